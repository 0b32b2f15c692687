"""The alert store (SQLite) and the alert state machine.

One database holds four tables: ``alerts`` (one row per fingerprint: its lifecycle state and
what was last told to the outside world), ``outbox`` (one row per message to one sink, written
in the same transaction as the state change that caused it), ``deliveries`` (every attempt,
for ``kpiforge alerts pending``) and ``silences``.

A sender claims an outbox message before sending it (``claimed_by``, ``claim_expires``: a
lease), so two runs, or a run and ``kpiforge alerts retry``, never both send one message. A
claim whose lease expired, or whose holder is a process of this machine that no longer
exists (killed), can be taken again: that message may then be sent twice, with the same id.

The database runs in WAL mode with ``synchronous=FULL``: a row the outbox committed survives a
crash of the process (SIGKILL) and of the machine, which is what "no alert is lost" rests on.
Timestamps are UTC epoch seconds (REAL) so comparisons are plain arithmetic.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from typing import Any, Iterator, Mapping, Sequence

from .._model import AlertState
from ._leases import holder_alive
from ._statefile import connect, sqlite_errors

__all__ = ["BUSY_TIMEOUT", "Store", "advance", "decide", "mark_notified", "new_row"]

# 1: the four tables. 2: outbox.claimed_by and outbox.claim_expires (delivery leases).
SCHEMA_VERSION = 2
# Seconds a statement waits for another process's write lock before giving up.
BUSY_TIMEOUT = 30.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY,
    kpi TEXT NOT NULL,
    slice TEXT NOT NULL DEFAULT '{}',
    labels TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'inactive',
    severity TEXT NOT NULL DEFAULT 'info',
    status TEXT,
    value REAL,
    period TEXT,
    active_count INTEGER NOT NULL DEFAULT 0,
    inactive_count INTEGER NOT NULL DEFAULT 0,
    episode INTEGER NOT NULL DEFAULT 0,
    step_key TEXT,
    base TEXT,
    started_at REAL,
    fired_at REAL,
    resolved_at REAL,
    updated_at REAL,
    notified_state TEXT,
    notified_severity TEXT,
    notified_at REAL,
    notified_episode INTEGER
);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    sink TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    delivered_at REAL,
    claimed_by TEXT,
    claim_expires REAL
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id TEXT NOT NULL,
    sink TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at REAL NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT,
    duration_ms REAL
);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    kpi TEXT,
    matchers TEXT NOT NULL DEFAULT '{}',
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
"""


def _migrate(conn: sqlite3.Connection, old: int) -> None:
    if old < 2:
        conn.execute("ALTER TABLE outbox ADD COLUMN claimed_by TEXT")
        conn.execute("ALTER TABLE outbox ADD COLUMN claim_expires REAL")


# The fields the state machine owns; ``base`` snapshots them before a period's step so that
# evaluating the same period again replays the step instead of counting it twice.
MACHINE_FIELDS = ("state", "severity", "active_count", "inactive_count", "episode",
                  "started_at", "fired_at", "resolved_at")


class Store:
    """One connection to the alert database. Not shared between threads: open one per thread.

    Opening checks the file first (see :mod:`._statefile`): a damaged, empty or foreign file
    raises :class:`StateError` and is left untouched. ``verify=False`` skips those checks, for
    the extra connections of a process that has just opened the file once.
    """

    def __init__(self, path: str | os.PathLike[str], *, verify: bool = True):
        self.path = os.fspath(path)
        self.busy_timeout = BUSY_TIMEOUT
        self.conn = connect(self.path, schema=_SCHEMA, version=SCHEMA_VERSION,
                            busy_timeout=self.busy_timeout, migrate=_migrate, verify=verify)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def errors(self) -> contextlib.AbstractContextManager[None]:
        """SQLite errors (a lock held too long, a damaged page) as :class:`StateError`."""
        return sqlite_errors(self.path, self.busy_timeout)

    def begin(self) -> None:
        with self.errors():
            self.conn.execute("BEGIN IMMEDIATE")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE so two runs at once serialise instead of failing at commit."""
        with self._lock, self.errors():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    # -- alerts ----------------------------------------------------------------------------
    def get_alert(self, fp: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM alerts WHERE fingerprint = ?", (fp,)).fetchone()
        return _decode_alert(dict(row)) if row else None

    def put_alert(self, row: Mapping[str, Any]) -> None:
        data = dict(row)
        data["slice"] = json.dumps(data.get("slice") or {}, ensure_ascii=False, sort_keys=True)
        data["labels"] = json.dumps(data.get("labels") or {}, ensure_ascii=False, sort_keys=True)
        data["base"] = json.dumps(data["base"]) if data.get("base") is not None else None
        columns = list(data)
        self.conn.execute(
            f"INSERT OR REPLACE INTO alerts ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})",
            [data[c] for c in columns])

    def alerts(self, *, include_inactive: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT * FROM alerts"
        if not include_inactive:
            sql += " WHERE state != 'inactive'"
        sql += " ORDER BY kpi, slice"
        return [_decode_alert(dict(r)) for r in self.conn.execute(sql)]

    # -- outbox ----------------------------------------------------------------------------
    def add_outbox(self, msg_id: str, fp: str, sink: str, kind: str, payload: Mapping[str, Any],
                   now: float) -> None:
        self.conn.execute(
            "INSERT INTO outbox (id, fingerprint, sink, kind, payload, created_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (msg_id, fp, sink, kind, json.dumps(payload, ensure_ascii=False, allow_nan=False),
             now, now))

    def undelivered(self, *, due_before: float | None = None, include_failed: bool = False,
                    sink: str | None = None) -> list[dict[str, Any]]:
        statuses = ("pending", "failed") if include_failed else ("pending",)
        sql = (f"SELECT * FROM outbox WHERE status IN ({', '.join('?' for _ in statuses)})")
        args: list[Any] = list(statuses)
        if due_before is not None:
            sql += " AND next_attempt_at <= ?"
            args.append(due_before)
        if sink is not None:
            sql += " AND sink = ?"
            args.append(sink)
        sql += " ORDER BY created_at, rowid"
        rows = []
        for r in self.conn.execute(sql, args):
            row = dict(r)
            row["payload"] = json.loads(row["payload"])
            rows.append(row)
        return rows

    def claim(self, msg_id: str, owner: str, *, lease: float, statuses: Sequence[str],
              now: float | None = None) -> dict[str, Any] | None:
        """Take message ``msg_id`` for ``owner`` for ``lease`` seconds; its fresh row, or None.

        None when it is no longer in one of ``statuses`` (another sender delivered it) or
        another live sender holds an unexpired claim. ``now`` is wall-clock time (leases are
        compared across processes, so never a replayed clock).
        """
        now = time.time() if now is None else now
        with self.transaction() as conn:
            row = conn.execute("SELECT * FROM outbox WHERE id = ?", (msg_id,)).fetchone()
            if row is None or row["status"] not in statuses:
                return None
            holder, expires = row["claimed_by"], row["claim_expires"]
            if (holder and holder != owner and expires is not None and expires > now
                    and holder_alive(holder)):
                return None
            conn.execute("UPDATE outbox SET claimed_by = ?, claim_expires = ? WHERE id = ?",
                         (owner, now + lease, msg_id))
        data = dict(row)
        data["payload"] = json.loads(data["payload"])
        return data

    def pending_count(self) -> int:
        return self.conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'failed')").fetchone()[0]

    def record_attempt(self, msg_id: str, sink: str, *, attempt: int, now: float, ok: bool,
                       error: str | None, duration_ms: float, status: str,
                       next_attempt_at: float | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO deliveries (outbox_id, sink, attempt, at, ok, error, duration_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (msg_id, sink, attempt, now, int(ok), error, duration_ms))
            # A delivery ends the claim, whoever holds it now (a sender whose lease ran out may
            # still finish), and no failure recorded later undoes it.
            if ok:
                conn.execute(
                    "UPDATE outbox SET status = 'delivered', attempts = ?, delivered_at = ?,"
                    " last_error = NULL, claimed_by = NULL, claim_expires = NULL WHERE id = ?",
                    (attempt, now, msg_id))
            else:
                conn.execute(
                    "UPDATE outbox SET status = ?, attempts = ?, last_error = ?,"
                    " next_attempt_at = COALESCE(?, next_attempt_at)"
                    " WHERE id = ? AND status != 'delivered'",
                    (status, attempt, error, next_attempt_at, msg_id))

    def release(self, msg_id: str, owner: str) -> None:
        """End ``owner``'s claim on a message it is done with (sent or not)."""
        with self.transaction() as conn:
            conn.execute("UPDATE outbox SET claimed_by = NULL, claim_expires = NULL"
                         " WHERE id = ? AND claimed_by = ?", (msg_id, owner))

    def prune_delivered(self, older_than: float) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM deliveries WHERE outbox_id IN (SELECT id FROM outbox"
                         " WHERE status = 'delivered' AND delivered_at < ?)", (older_than,))
            conn.execute("DELETE FROM outbox WHERE status = 'delivered' AND delivered_at < ?",
                         (older_than,))

    # -- silences --------------------------------------------------------------------------
    def add_silence(self, silence_id: str, *, kpi: str | None, matchers: Mapping[str, str],
                    starts_at: float, ends_at: float, comment: str, created_by: str,
                    now: float) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO silences (id, kpi, matchers, starts_at, ends_at, comment,"
                " created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (silence_id, kpi, json.dumps(dict(matchers), sort_keys=True), starts_at, ends_at,
                 comment, created_by, now))

    def silences(self, *, active_at: float | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM silences", []
        if active_at is not None:
            sql += " WHERE starts_at <= ? AND ends_at > ?"
            args = [active_at, active_at]
        rows = []
        for r in self.conn.execute(sql + " ORDER BY ends_at, id", args):
            row = dict(r)
            row["matchers"] = json.loads(row["matchers"])
            rows.append(row)
        return rows

    def remove_silence(self, silence_id: str) -> bool:
        with self.transaction() as conn:
            return conn.execute("DELETE FROM silences WHERE id = ?", (silence_id,)).rowcount > 0


def _decode_alert(row: dict[str, Any]) -> dict[str, Any]:
    row["slice"] = json.loads(row.get("slice") or "{}")
    row["labels"] = json.loads(row.get("labels") or "{}")
    row["base"] = json.loads(row["base"]) if row.get("base") else None
    return row


# -- the state machine ---------------------------------------------------------------------

def new_row(fp: str, kpi: str, slice_: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "fingerprint": fp, "kpi": kpi, "slice": dict(slice_), "labels": {},
        "state": AlertState.INACTIVE, "severity": "info", "status": None, "value": None, "period": None,
        "active_count": 0, "inactive_count": 0, "episode": 0, "step_key": None, "base": None,
        "started_at": None, "fired_at": None, "resolved_at": None, "updated_at": None,
        "notified_state": None, "notified_severity": None, "notified_at": None,
        "notified_episode": None,
    }


def _older(key: str, than: str) -> bool:
    # Period keys of one grain ("2026-09" < "2026-10") sort as text; keys of different shapes
    # (a grain change) are not comparable and count as new.
    return len(key) == len(than) and key < than


def advance(row: dict[str, Any], *, active: bool, severity: str, step_key: str,
            steps_to_fire: int, keep_firing_for: int, now: float) -> dict[str, Any] | None:
    """Apply one evaluation to ``row``; return the new row, or None for a stale (older) step.

    The same ``step_key`` again (the same period evaluated twice) replays the step from the
    snapshot taken before it, so it never counts as a second consecutive evaluation, yet a
    corrected value for that period still changes the outcome.
    """
    row = dict(row)
    last = row.get("step_key")
    if last is not None and step_key == last and row.get("base") is not None:
        base = dict(row["base"])
        row.update(base)
    elif last is not None and _older(step_key, last):
        return None
    else:
        base = {f: row.get(f) for f in MACHINE_FIELDS}
    state = row["state"]
    if active:
        row["inactive_count"] = 0
        if state == AlertState.FIRING:
            row["severity"] = severity
        else:
            row["active_count"] = (row["active_count"] if state == AlertState.PENDING else 0) + 1
            if state != AlertState.PENDING:
                row["started_at"] = now
            row["severity"] = severity
            if row["active_count"] >= steps_to_fire:
                row["state"] = AlertState.FIRING
                row["episode"] = int(row["episode"] or 0) + 1
                row["fired_at"] = now
                row["resolved_at"] = None
            else:
                row["state"] = AlertState.PENDING
    else:
        if state == AlertState.FIRING:
            row["inactive_count"] += 1
            if row["inactive_count"] > keep_firing_for:
                row.update(state=AlertState.RESOLVED, resolved_at=now, active_count=0, inactive_count=0)
        elif state == AlertState.PENDING:
            row.update(state=AlertState.INACTIVE, active_count=0, started_at=None)
    row["step_key"] = step_key
    row["base"] = base
    row["updated_at"] = now
    return row


def decide(row: Mapping[str, Any], *, now: float, repeat_interval: float,
           send_resolved: bool) -> str | None:
    """Which notification ``row`` calls for now, from what was last told to the world.

    ``"firing"`` for a new episode or a changed severity, ``"repeat"`` once
    ``repeat_interval`` has passed, ``"resolved"`` when a notified episode ended, ``"forget"``
    when it ended but resolved notifications are off; None when nothing is due.
    """
    if row["state"] == AlertState.FIRING:
        if row.get("notified_state") != AlertState.FIRING or row.get("notified_episode") != row["episode"]:
            return "firing"
        if row.get("notified_severity") != row["severity"]:
            return "firing"
        if row.get("notified_at") is None or now - row["notified_at"] >= repeat_interval:
            return "repeat"
        return None
    if row.get("notified_state") == AlertState.FIRING:
        return "resolved" if send_resolved else "forget"
    return None


def mark_notified(row: dict[str, Any], kind: str, now: float) -> None:
    row["notified_state"] = (AlertState.FIRING if kind in ("firing", "repeat")
                            else AlertState.RESOLVED)
    row["notified_severity"] = row["severity"]
    row["notified_at"] = now
    row["notified_episode"] = row["episode"]
