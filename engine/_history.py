"""KPI history: the values of every run, kept in an SQLite file next to the alert state.

Where: ``history.db`` beside the alert state database (``state:`` in the project, default
``.kpiforge/state.db``), so ``.kpiforge/history.db`` by default. A state of ``:memory:``
keeps nothing from one run to the next, and neither does history then. A file of its own rather than a table in ``state.db``, because:

* the alert state is the memory of what was notified: losing it notifies every firing alert
  again, and its file checks refuse an unmarked database with other tables. History is only a
  record of values a re-run can rebuild: it may be deleted, copied or shared on its own;
* history grows with every period and slice; a write of thousands of rows must not hold the
  lock the alert dispatch needs (each file has its own lock);
* the alert state's schema version stays the alerts' own.

The file is marked with its own ``PRAGMA application_id`` (:data:`APPLICATION_ID`), so neither
file is ever mistaken for the other, and another application's database is refused, untouched.

One row per (KPI, period, slice): a run replaces, in one ``BEGIN IMMEDIATE`` transaction, every
row of each (KPI, period, dimensions) it computed, so a slice that vanished from the data
vanishes from history too, and two runs at once each write whole (SQLite's busy timeout makes
the second wait). ``definition_hash`` fingerprints what decides a value and its status
(formula, inputs, unit, thresholds, ...), so a change of definition between two values shows.

The same file keeps the annotations people write about periods (schema version 2, the
``annotations`` table; :mod:`kpiforge._annotations_store`): they explain these values, and are
shared, backed up and deleted with them. A version 1 file is brought up to date by the first
command that writes to it; readers leave it as it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from ._periods import GRAINS
from .errors import ArgumentError, StateError

if TYPE_CHECKING:  # the annotations store reads this file: no import back at run time
    from ._annotations_store import Annotation

__all__ = ["APPLICATION_ID", "HISTORY_FILE", "History", "HistoryRecord", "definition_hash",
           "has_table", "history_errors", "history_path", "open_history", "read_history",
           "record_history", "write_transaction"]

# "KPFH": distinct from the alert state's "KPFG"
APPLICATION_ID = 0x4B504648
HISTORY_FILE = "history.db"
BUSY_TIMEOUT = 30.0
_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    kpi TEXT NOT NULL,
    grain TEXT NOT NULL,
    period TEXT NOT NULL,
    dims TEXT NOT NULL,
    slice TEXT NOT NULL,
    value REAL,
    unit TEXT NOT NULL,
    currency TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    reason_code TEXT,
    version INTEGER NOT NULL,
    definition_hash TEXT NOT NULL,
    run_at TEXT NOT NULL,
    PRIMARY KEY (kpi, period, slice)
);
CREATE INDEX IF NOT EXISTS history_series ON history (kpi, dims, grain, period);
"""
# version 2: what people wrote about a period (kpiforge._annotations_store). AUTOINCREMENT: an
# id is never given again after a delete, so an id quoted in a report keeps meaning one note
_ANNOTATIONS = """
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kpi TEXT NOT NULL,
    grain TEXT NOT NULL,
    period TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    slice TEXT NOT NULL,
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_days ON annotations (kpi, first_day, last_day);
"""
# kpi: an id, or "*" for every KPI; days: ISO dates, both included; slice: JSON, sorted keys
# what each version adds to the one before it, applied in order to an older file
_MIGRATIONS = {2: _ANNOTATIONS}
# dims: the slice's dimension names, sorted, comma-separated; slice: JSON with sorted keys
# what decides a value and its status; names, descriptions and owners do not
_HASHED = ("formula", "inputs", "unit", "currency", "direction", "thresholds", "target",
           "tolerance", "parameters", "fields")


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One stored value. ``definition_changed`` is True when the definition's hash differs from
    the one of the previous period of the same series (same grain and slice); ``annotations``
    are the ids of the :class:`kpiforge.Annotation` s about its KPI, slice and period."""

    kpi: str
    grain: str
    period: str
    slice: Mapping[str, Any]
    value: float | None
    unit: str
    currency: str | None
    status: str
    reason: str | None
    reason_code: str | None
    version: int
    definition_hash: str
    run_at: str
    definition_changed: bool = False
    annotations: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Shaped like a record of ``kpiforge run --format json``, plus the history's fields."""
        return {"kpi": self.kpi, "period": self.period, "slice": dict(self.slice),
                "value": self.value, "unit": self.unit, "currency": self.currency,
                "status": self.status, "reason": self.reason, "reason_code": self.reason_code,
                "grain": self.grain, "run_at": self.run_at, "version": self.version,
                "definition_hash": self.definition_hash,
                "definition_changed": self.definition_changed,
                "annotations": list(self.annotations)}


@dataclass(frozen=True)
class History:
    """What :meth:`kpiforge.Project.history` returns: records ordered by grain, slice, period,
    and the annotations their ``annotations`` ids name, ordered by first day."""

    records: tuple[HistoryRecord, ...]
    path: str
    annotations: tuple["Annotation", ...] = ()

    def __iter__(self) -> Iterator[HistoryRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def to_records(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.records]


def history_path(state_path: str) -> str:
    """The history file beside the (resolved) alert state database path."""
    if state_path == ":memory:":
        return ":memory:"
    return str(Path(state_path).with_name(HISTORY_FILE))


def definition_hash(definition: Any) -> str:
    """A short fingerprint (SHA-256, 16 hex digits) of what decides the definition's values."""
    data = definition.to_dict()
    canonical = json.dumps({k: data.get(k) for k in _HASHED}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _slice_key(slice_: Mapping[str, Any]) -> str:
    return json.dumps(dict(slice_), sort_keys=True, ensure_ascii=False, default=str)


@contextlib.contextmanager
def history_errors(path: str) -> Iterator[None]:
    """sqlite3's errors on the history at ``path`` as :class:`StateError` saying what to do."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise StateError(f"{path}: the history database stayed locked by another process "
                             f"for more than {BUSY_TIMEOUT:g}s") from exc
        raise StateError(f"{path}: cannot use the history database "
                         f"({getattr(exc, 'sqlite_errorname', exc)})") from exc
    except sqlite3.DatabaseError as exc:
        raise StateError(f"{path}: not a kpiforge history database, or a damaged one; "
                         "kpiforge has not changed it") from exc


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (the write lock first, so two writers never deadlock on upgrading a
    read lock) ... ``COMMIT``; rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def open_history(path: str, *, create: bool) -> sqlite3.Connection | None:
    """A connection to the history at ``path``; None when it does not exist and not ``create``.

    A file of an older version is brought up to date only by a writer (``create``): a reader
    (history, report, serve) never writes, and sees an older file's missing tables as empty."""
    if path == ":memory:":  # like the alert state there: gone when the connection closes
        conn = sqlite3.connect(":memory:", isolation_level=None)
        _execute(conn, _SCHEMA + _ANNOTATIONS)
        return conn
    file = Path(path)
    if not file.exists():
        if not create:
            return None
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"{path}: cannot create the history database: "
                             f"{exc.strerror or exc}") from exc
    elif file.stat().st_size and _header(file) != b"SQLite format 3\x00":
        raise StateError(f"{path}: not an SQLite database, so not kpiforge history; "
                         "kpiforge has not changed it")
    with history_errors(path):
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            if app_id == 0:  # a new file, or another's: told apart under the write lock
                _create_schema(conn, path)
            elif app_id != APPLICATION_ID:
                raise StateError(f"{path}: an SQLite database that is not kpiforge history; "
                                 "kpiforge has not changed it")
            else:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > _VERSION:
                    raise StateError(f"{path}: history written by a newer kpiforge")
                if version < _VERSION and create:
                    _migrate(conn)
                if create and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    _prefer_wal(conn)
        except BaseException:
            conn.close()
            raise
    return conn


def _create_schema(conn: sqlite3.Connection, path: str) -> None:
    """Make the tables in a new file, once even when two processes open it at once; refuse
    (unchanged) a file with tables of its own and no kpiforge mark."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
            conn.execute("ROLLBACK")  # another process made it while this one waited
            return
        if _has_tables(conn):
            raise StateError(f"{path}: an SQLite database that is not kpiforge history; "
                             "kpiforge has not changed it")
        _execute(conn, _SCHEMA + _ANNOTATIONS)
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    _prefer_wal(conn)


def _prefer_wal(conn: sqlite3.Connection) -> None:
    """WAL, so that readers never wait for a writer. Switching needs the file to itself, and
    SQLite refuses at once (no busy wait) while another connection reads it: then a later
    writer switches it, and until then the file works as it is."""
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) not in (sqlite3.SQLITE_BUSY,
                                                          sqlite3.SQLITE_LOCKED):
            raise


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring an older file to :data:`_VERSION`, once even when two processes open it at once."""
    with write_transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for step in range(version + 1, _VERSION + 1):
            _execute(conn, _MIGRATIONS[step])
        conn.execute(f"PRAGMA user_version={_VERSION}")


def _execute(conn: sqlite3.Connection, script: str) -> None:
    # statement by statement: executescript would commit, and so drop the lock
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the history holds table ``name`` (a file of an older version may not)."""
    return conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (name,)).fetchone()[0] > 0


def _header(file: Path) -> bytes:
    with open(file, "rb") as handle:
        return handle.read(16)


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] > 0


def record_history(path: str, engine: Any, result: Any, *, now: float | None = None) -> int:
    """Store ``result``'s records (a :class:`kpiforge.RunResult`) in the history at ``path``,
    replacing what an earlier run stored for the same KPI, period and dimensions. Returns the
    number of rows written."""
    run_at = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    stamp = run_at.isoformat(timespec="seconds").replace("+00:00", "Z")
    hashes = {k: definition_hash(d) for k, d in engine.definitions.items()}
    rows, groups = [], set()
    for r in result.records:
        dims = ",".join(sorted(r.slice))
        groups.add((r.kpi, r.period, dims))
        definition = engine.definitions.get(r.kpi)
        rows.append((r.kpi, result.grain, r.period, dims, _slice_key(r.slice), r.value, r.unit,
                     r.currency, str(r.status), None if r.reason is None else str(r.reason),
                     r.reason_code, definition.version if definition is not None else 0,
                     hashes.get(r.kpi, ""), stamp))
    if not rows:
        return 0
    conn = open_history(path, create=True)
    assert conn is not None
    try:
        with history_errors(path):
            with write_transaction(conn):
                conn.executemany("DELETE FROM history WHERE kpi = ? AND period = ? AND dims = ?",
                                 sorted(groups))
                conn.executemany("INSERT OR REPLACE INTO history VALUES "
                                 "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    finally:
        conn.close()
    return len(rows)


def read_history(path: str, kpi: str, *, by: Sequence[str] | str = (), last: int | None = None,
                 grain: str | None = None) -> History:
    """The stored values of ``kpi`` split by exactly the dimensions ``by`` (none: the totals),
    of every grain or of ``grain``; ``last`` keeps the last N periods of each grain."""
    dims = sorted(d.strip() for part in ([by] if isinstance(by, str) else by)
                  for d in part.split(",") if d.strip())
    if last is not None and last < 1:
        raise ArgumentError(f"last: expected a positive number of periods, got {last}")
    if grain is not None and grain not in GRAINS:
        raise ArgumentError(f"grain: expected one of {', '.join(GRAINS)}, got {grain!r}")
    conn = open_history(path, create=False)
    if conn is None:
        return History((), path)
    try:
        with history_errors(path):
            conn.row_factory = sqlite3.Row
            query = "SELECT * FROM history WHERE kpi = ? AND dims = ?"
            params: list[Any] = [kpi, ",".join(dims)]
            if grain is not None:
                query += " AND grain = ?"
                params.append(grain)
            found = [dict(r) for r in conn.execute(query, params)]
            conn.row_factory = None
    finally:
        conn.close()
    return History(tuple(_series(found, last)), path)


def _series(rows: list[dict[str, Any]], last: int | None) -> Iterator[HistoryRecord]:
    order = {g: i for i, g in enumerate(GRAINS)}
    rows.sort(key=lambda r: (order.get(r["grain"], len(order)), r["slice"], r["period"]))
    kept: dict[str, list[str]] = {}
    for grain in {r["grain"] for r in rows}:
        periods = sorted({r["period"] for r in rows if r["grain"] == grain})
        kept[grain] = periods[-last:] if last else periods
    previous: dict[tuple[str, str], str] = {}
    for r in rows:
        series = (r["grain"], r["slice"])
        changed = series in previous and previous[series] != r["definition_hash"]
        previous[series] = r["definition_hash"]
        if r["period"] not in kept[r["grain"]]:
            continue
        yield HistoryRecord(
            kpi=r["kpi"], grain=r["grain"], period=r["period"],
            slice=MappingProxyType(json.loads(r["slice"])), value=r["value"], unit=r["unit"],
            currency=r["currency"], status=r["status"], reason=r["reason"],
            reason_code=r["reason_code"], version=r["version"],
            definition_hash=r["definition_hash"], run_at=r["run_at"], definition_changed=changed)
