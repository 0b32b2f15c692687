"""The alert state file: refused whole when damaged or foreign, claims on outbox messages,
concurrent senders, and a write lock held by another process during delivery."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from kpiforge import Engine, StateError
from kpiforge.alerts import _state, dispatch
from kpiforge.alerts._state import Store
from kpiforge.alerts._statefile import APPLICATION_ID
from tests.alert_servers import hook_server, record, recording_plugins, write_kpis  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("KPIFORGE_FAILPOINT", None)
    return env


# -- damaged and foreign files --------------------------------------------------------------

def _kpiforge_state(path: Path) -> None:
    with Store(path) as store, store.transaction():
        for i in range(400):  # several pages, so that damage lands inside the tables
            row = _state.new_row(f"fp{i:04d}", "ctr", {"country": f"C{i}" * 20})
            store.put_alert(row)


def _corrupt_pages(path: Path) -> None:
    _kpiforge_state(path)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    assert len(data) >= 4 * page
    data[page:3 * page] = b"\xa5" * (2 * page)  # pages 2 and 3: B-tree pages of the tables
    path.write_bytes(bytes(data))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _foreign_tables(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ana')")
    conn.close()


def _foreign_application(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA application_id=1598903374")  # Fossil's
        conn.executescript(_state._SCHEMA)  # even with kpiforge's tables
    conn.close()


def _text(path: Path) -> None:
    path.write_text("alerts:\n  - this is not a database\n")


@pytest.mark.parametrize("damage, words", [
    (_corrupt_pages, "damaged"),
    (_empty, "empty (0 bytes)"),
    (_foreign_tables, "not kpiforge alert state (it has users)"),
    (_foreign_application, "another application"),
    (_text, "not an SQLite database"),
])
def test_a_damaged_or_foreign_state_file_is_refused_and_left_unchanged(tmp_path, damage, words):
    path = tmp_path / ".kpiforge" / "state.db"
    path.parent.mkdir()
    damage(path)
    before = path.read_bytes()
    with pytest.raises(StateError) as caught:
        Store(path)
    assert str(path) in str(caught.value) and words in str(caught.value)

    # and through the command line: exit 1, a message naming the file, no traceback
    write_kpis(tmp_path)
    (tmp_path / "kpiforge.yaml").write_text("state: .kpiforge/state.db\n")
    for command in (["alerts", "pending"], ["alerts", "retry"],
                    ["silence", "add", "--kpi", "ctr", "--for", "1h", "--comment", "x"]):
        done = subprocess.run([sys.executable, "-m", "kpiforge", *command], cwd=tmp_path,
                              env=_env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert words in done.stderr and "state.db" in done.stderr
        assert "Traceback" not in done.stderr
    assert path.read_bytes() == before


def test_dispatch_refuses_a_damaged_state_file_before_evaluating(tmp_path):
    plugins, recorder = recording_plugins()
    engine = Engine.load(write_kpis(tmp_path), plugins=plugins)
    path = tmp_path / ".kpiforge" / "state.db"
    path.parent.mkdir()
    _corrupt_pages(path)
    before = path.read_bytes()
    with pytest.raises(StateError, match="damaged"):
        dispatch(engine, [record("ctr", "2026-10", 1.0, "warning")], project_dir=tmp_path,
                 sinks={"ops": {"type": "recorder"}}, plugins=plugins)
    assert recorder.of("ops") == [] and path.read_bytes() == before


def test_a_new_state_file_is_marked_as_kpiforge_state(tmp_path):
    path = tmp_path / "new" / "state.db"
    Store(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == _state.SCHEMA_VERSION
    conn.close()
    assert sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".new")) == []


# What kpiforge wrote before state files carried an application id: schema 1, no claims.
V1_SCHEMA = _state._SCHEMA.replace(",\n    claimed_by TEXT,\n    claim_expires REAL", "")


def test_a_state_file_from_before_the_application_id_is_migrated(tmp_path):
    path = tmp_path / "state.db"
    assert "claimed_by" not in V1_SCHEMA and "delivered_at REAL\n);" in V1_SCHEMA
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.execute("PRAGMA user_version=1")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("INSERT INTO alerts (fingerprint, kpi, state) VALUES ('fp1', 'ctr', 'firing')")
    conn.execute("INSERT INTO outbox (id, fingerprint, sink, kind, payload, created_at,"
                 " next_attempt_at) VALUES ('msg_1', 'fp1', 'ops', 'firing', '{}', 1, 1)")
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert store.get_alert("fp1")["state"] == "firing"
        assert store.claim("msg_1", "me", lease=10, statuses=("pending",)) is not None
        assert store.conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == 2
    Store(path).close()  # and it opens again as a kpiforge file


# -- claims ---------------------------------------------------------------------------------

def _queued(tmp_path: Path) -> Store:
    store = Store(tmp_path / "state.db")
    with store.transaction():
        store.add_outbox("msg_1", "fp", "ops", "firing", {"kpi": "ctr"}, 0.0)
    return store


def test_a_claim_holds_until_its_lease_expires(tmp_path):
    with _queued(tmp_path) as store:
        pending = ("pending",)
        assert store.claim("msg_1", "a", lease=60, statuses=pending, now=1000)["id"] == "msg_1"
        assert store.claim("msg_1", "b", lease=60, statuses=pending, now=1059) is None
        assert store.claim("msg_1", "b", lease=60, statuses=pending, now=1061)["id"] == "msg_1"
        assert store.claim("msg_1", "a", lease=60, statuses=pending, now=1062) is None
        store.release("msg_1", "b")
        assert store.claim("msg_1", "a", lease=60, statuses=pending, now=1063) is not None


def test_a_claim_of_a_killed_process_is_taken_at_once(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=60)
    dead = f"{socket.gethostname()}:{int(done.stdout)}:0123456789ab"
    with _queued(tmp_path) as store:
        assert store.claim("msg_1", dead, lease=3600, statuses=("pending",)) is not None
        assert store.claim("msg_1", "me", lease=60, statuses=("pending",)) is not None


def test_a_delivered_message_is_not_claimed_again(tmp_path):
    with _queued(tmp_path) as store:
        store.record_attempt("msg_1", "ops", attempt=1, now=1.0, ok=True, error=None,
                             duration_ms=1.0, status="delivered")
        assert store.claim("msg_1", "me", lease=60, statuses=("pending", "failed")) is None


# -- two senders at once --------------------------------------------------------------------

QUEUE_200 = textwrap.dedent("""
    import sys
    from kpiforge import Engine
    from kpiforge._yamlio import load_document
    from kpiforge.alerts import dispatch
    root = sys.argv[1]
    config = load_document(root + "/kpiforge.yaml").data
    engine = Engine.load(root + "/kpis.yaml")
    records = [{"kpi": "ctr", "period": "2026-10", "slice": {"shop": f"s{i:03d}"}, "value": 1.0,
                "unit": "percent", "status": "warning"} for i in range(200)]
    dispatch(engine, records, project_dir=root, alerting=config.get("alerting"),
             sinks=config.get("sinks"), state_path=config.get("state"))
""")


def test_two_senders_at_once_deliver_every_message_exactly_once(tmp_path, hook_server):
    write_kpis(tmp_path)
    (tmp_path / "kpiforge.yaml").write_text(
        f"state: .kpiforge/state.db\nsinks:\n  ops: {{type: webhook, url: '{hook_server.url}/hook'}}\n")
    queued = subprocess.run([sys.executable, "-c", QUEUE_200, str(tmp_path)], cwd=tmp_path,
                            env={**_env(), "KPIFORGE_FAILPOINT": "after-outbox-write"},
                            capture_output=True, text=True, timeout=120)
    assert queued.returncode == -9, queued.stderr  # killed with 200 messages queued, none sent
    assert hook_server.received() == []
    hook_server.answer("/hook", default="slow:0.01")  # each send takes a while: they overlap

    senders = [subprocess.Popen([sys.executable, "-m", "kpiforge", "alerts", "retry",
                                 "--format", "json"], cwd=tmp_path, env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    reports = []
    for sender in senders:
        out, err = sender.communicate(timeout=300)
        assert sender.returncode == 0, err
        reports.append(json.loads(out))

    ids = [r.headers["webhook-id"] for r in hook_server.received("/hook")]
    assert len(ids) == 200 and len(set(ids)) == 200
    assert sum(r["sent"].get("ops", 0) for r in reports) == 200
    assert all(r["failed"] == {} for r in reports)
    with Store(tmp_path / ".kpiforge" / "state.db") as store:
        assert store.pending_count() == 0


# -- the write lock held by another process during delivery ----------------------------------

def test_a_write_lock_held_during_delivery_is_counted_not_a_dead_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(_state, "BUSY_TIMEOUT", 0.2)
    plugins, recorder = recording_plugins()
    engine = Engine.load(write_kpis(tmp_path), plugins=plugins)
    db = tmp_path / ".kpiforge" / "state.db"
    holder: list[sqlite3.Connection] = []
    original = recorder.factory

    def locking_factory(name, settings, context):
        sink = original(name, settings, context)
        send = sink.send

        def send_then_lock(alert):
            send(alert)
            if not holder:  # another process takes the write lock and keeps it
                conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
                conn.execute("BEGIN EXCLUSIVE")
                holder.append(conn)

        sink.send = send_then_lock
        return sink

    plugins.sink_types["recorder"] = plugins.sink_types["recorder"].__class__(
        "sink", "recorder", "test", locking_factory)
    crashes: list[object] = []
    monkeypatch.setattr(threading, "excepthook", crashes.append)
    records = [record("ctr", "2026-10", 1.0, "warning", slice={"shop": s}) for s in "abc"]
    try:
        report = dispatch(engine, records, project_dir=tmp_path,
                          sinks={"ops": {"type": "recorder"}}, plugins=plugins)
    finally:
        for conn in holder:
            conn.rollback()
            conn.close()
    assert crashes == []
    assert report.sent == {} and report.failed == {"ops": 3}
    assert "locked by another process" in report.errors["ops"][0]
    assert "sent, but not recorded as delivered" in report.errors["ops"][0]
    assert len(recorder.of("ops")) == 1
    with Store(db) as store:  # nothing is lost: all three wait in the outbox
        assert store.pending_count() == 3
