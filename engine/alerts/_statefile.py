"""Opening the alert state database without ever harming a file that is not ours.

A state file is the memory of every alert: if it silently started empty, every firing alert
would be notified again, and if kpiforge wrote into somebody else's SQLite file it would damage
it. So a kpiforge state database is marked with ``PRAGMA application_id`` (:data:`APPLICATION_ID`)
and opening one follows these rules:

* a missing file is created, atomically (built under a temporary name, then hard-linked into
  place), so two runs starting at once never see each other's half-made or 0-byte file;
* an existing file must be an SQLite database carrying kpiforge's application id, or one
  written before the id existed (application id 0 and exactly kpiforge's tables), which is
  then marked; a 0-byte file, a text file or another application's database is refused, and
  is read through a read-only connection so that nothing is written to it, ever;
* ``PRAGMA quick_check`` runs before anything is written, so a damaged database is refused
  whole instead of failing at some later query.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Callable, Iterator

from ..errors import StateError

__all__ = ["APPLICATION_ID", "TABLES", "connect", "sqlite_errors"]

# "KPFG": what `sqlite3 state.db 'PRAGMA application_id'` shows is 1263552071.
APPLICATION_ID = 0x4B504647
TABLES = frozenset({"alerts", "outbox", "deliveries", "silences"})
_MAGIC = b"SQLite format 3\x00"
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_LEAVE_IT = "kpiforge has not changed it"


def _what_to_do(path: str) -> str:
    return (f"Restore it from a backup, or point 'state:' in kpiforge.yaml at another file; "
            f"deleting {path} starts with no alert state, so every firing alert is notified again")


@contextlib.contextmanager
def sqlite_errors(path: str, busy_timeout: float) -> Iterator[None]:
    """Translate SQLite's errors on ``path`` into :class:`StateError` messages naming it."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) in _BUSY_CODES:
            raise StateError(
                f"{path}: the alert state database stayed locked by another process for more "
                f"than {busy_timeout:g}s") from exc
        raise StateError(f"{path}: cannot use the alert state database "
                         f"({getattr(exc, 'sqlite_errorname', 'SQLite error')})") from exc
    except sqlite3.DatabaseError as exc:
        raise StateError(f"{path}: the alert state database is damaged; {_LEAVE_IT}. "
                         f"{_what_to_do(path)}") from exc


def _open(target: str, busy_timeout: float, *, uri: bool = False) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE), never implicit.
    conn = sqlite3.connect(target, timeout=busy_timeout, isolation_level=None,
                           check_same_thread=False, uri=uri)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    return conn


def _create(path: Path, schema: str, version: int, busy_timeout: float) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    try:
        conn = _open(str(tmp), busy_timeout)
        try:
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={version}")
            conn.executescript(schema)
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()  # the last connection folds the WAL into the file and removes it
        try:
            os.link(tmp, path)  # fails if another process created it first: then use theirs
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _refuse_unless_sqlite(path: Path) -> None:
    shown = str(path)
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        raise StateError(f"{shown}: cannot read the alert state file: "
                         f"{exc.strerror or exc}") from exc
    if not header:
        raise StateError(
            f"{shown}: the alert state file is empty (0 bytes): it may have been truncated, and "
            f"starting again from nothing would notify every firing alert again; {_LEAVE_IT}. "
            f"{_what_to_do(shown)}")
    if not header.startswith(_MAGIC):
        raise StateError(f"{shown}: not an SQLite database, so not kpiforge alert state; "
                         f"{_LEAVE_IT}. Point 'state:' in kpiforge.yaml at another file")


def _inspect(path: Path, busy_timeout: float) -> bool:
    """Check ``path`` through a read-only connection; True when it predates the application id."""
    shown = str(path)
    with sqlite_errors(shown, busy_timeout):
        conn = _open(f"{path.resolve().as_uri()}?mode=ro", busy_timeout, uri=True)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
            if app_id not in (0, APPLICATION_ID):
                raise StateError(
                    f"{shown}: an SQLite database of another application (application_id "
                    f"{app_id:#x}), not kpiforge alert state; {_LEAVE_IT}. "
                    "Point 'state:' in kpiforge.yaml at another file")
            if app_id == 0 and tables != TABLES:
                found = ", ".join(sorted(tables)) or "no tables"
                raise StateError(
                    f"{shown}: an SQLite database that is not kpiforge alert state (it has "
                    f"{found}); {_LEAVE_IT}. Point 'state:' in kpiforge.yaml at another file")
            problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise StateError(
                    f"{shown}: the alert state database is damaged (SQLite's integrity check "
                    f"finds {len(problems)} problem(s)); {_LEAVE_IT}. {_what_to_do(shown)}")
            return app_id == 0
        finally:
            conn.close()


def connect(path: str, *, schema: str, version: int, busy_timeout: float,
            migrate: Callable[[sqlite3.Connection, int], None], verify: bool = True) -> sqlite3.Connection:
    """A read-write connection to the state database at ``path`` (created when missing).

    ``migrate(conn, old_version)`` upgrades an older schema inside a write transaction.
    ``verify=False`` skips the file checks, for extra connections opened by a process that
    has just verified the file.
    """
    if path == ":memory:":
        with sqlite_errors(path, busy_timeout):
            conn = _open(path, busy_timeout)
            conn.executescript(schema)
            conn.execute(f"PRAGMA user_version={version}")
        return conn
    file = Path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        if not file.exists():
            _create(file, schema, version, busy_timeout)
    except OSError as exc:
        raise StateError(f"{path}: cannot create the alert state database: "
                         f"{exc.strerror or exc}") from exc
    except sqlite3.Error as exc:
        raise StateError(f"{path}: cannot create the alert state database") from exc
    legacy = False
    if verify:
        _refuse_unless_sqlite(file)
        legacy = _inspect(file, busy_timeout)
    with sqlite_errors(path, busy_timeout):
        conn = _open(path, busy_timeout)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current > version:
                raise StateError(
                    f"{path}: alert state was written by a newer kpiforge "
                    f"(schema {current}, this one knows {version})")
            if legacy or current < version:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # another process may have upgraded it while this one waited for the lock
                    current = conn.execute("PRAGMA user_version").fetchone()[0]
                    if current < version:
                        migrate(conn, current)
                        conn.execute(f"PRAGMA user_version={version}")
                    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
    return conn
