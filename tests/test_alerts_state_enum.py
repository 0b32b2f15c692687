"""Alert states are :class:`kpiforge.AlertState`; stored rows and JSON keep the plain strings."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
import yaml

import kpiforge
from kpiforge import AlertState, Engine
from kpiforge.alerts import Alert, Store, dispatch, simulate
from kpiforge.alerts._state import advance, new_row
from tests.alert_servers import record, recording_plugins, write_kpis

SINKS = {"rec": {"type": "recorder"}}


def test_the_states_and_their_values():
    assert [(s.name, s.value) for s in AlertState] == [
        ("INACTIVE", "inactive"), ("PENDING", "pending"), ("FIRING", "firing"),
        ("RESOLVED", "resolved")]
    assert kpiforge.AlertState is kpiforge.alerts.AlertState
    assert AlertState("firing") is AlertState.FIRING and AlertState.FIRING == "firing"


def test_states_round_trip_through_the_state_database(tmp_path):
    db = tmp_path / "state.db"
    with Store(db) as store, store.transaction():
        for state in AlertState:
            store.put_alert({**new_row(f"fp-{state}", "cpc", {}), "state": state,
                             "notified_state": state})
    raw = sqlite3.connect(db)
    try:
        stored = dict(raw.execute("SELECT fingerprint, state FROM alerts"))
        assert {type(v) for v in stored.values()} == {str}
        assert stored == {f"fp-{s}": s.value for s in AlertState}
    finally:
        raw.close()
    with Store(db) as store:
        for state in AlertState:
            row = store.get_alert(f"fp-{state}")
            assert AlertState(row["state"]) is state
            assert AlertState(row["notified_state"]) is state


def test_a_state_file_holding_plain_strings_still_advances(tmp_path):
    # Rows written before AlertState hold plain strings; the state machine reads them alike.
    db = tmp_path / "state.db"
    row = {**new_row("fp", "cpc", {}), "state": "pending", "active_count": 1, "step_key": "2026-09"}
    with Store(db) as store, store.transaction():
        store.put_alert(row)
    with Store(db) as store:
        stored = store.get_alert("fp")
    updated = advance(stored, active=True, severity="warning", step_key="2026-10",
                      steps_to_fire=2, keep_firing_for=0, now=1.0)
    assert updated["state"] is AlertState.FIRING


def test_dispatch_hands_sinks_an_alert_state_and_stores_strings(tmp_path):
    engine = Engine.load(write_kpis(tmp_path))
    plugins, recorder = recording_plugins()
    for period in ("2026-09", "2026-10"):
        dispatch(engine, [record("cpc", period, 4.0, "warning")], project_dir=tmp_path,
                 sinks=SINKS, plugins=plugins)
    dispatch(engine, [record("cpc", "2026-11", 1.0, "good")], project_dir=tmp_path,
             sinks=SINKS, plugins=plugins)
    sent = recorder.of("rec")
    assert [a.state for a in sent] == [AlertState.FIRING, AlertState.RESOLVED]
    assert all(type(a.state) is AlertState for a in sent)
    raw = sqlite3.connect(tmp_path / ".kpiforge" / "state.db")
    try:
        assert raw.execute("SELECT state, notified_state FROM alerts").fetchall() == [
            ("resolved", "resolved")]
        payloads = [json.loads(p) for (p,) in raw.execute("SELECT payload FROM outbox ORDER BY rowid")]
    finally:
        raw.close()
    assert [p["state"] for p in payloads] == ["firing", "resolved"]


def test_an_alert_from_its_stored_payload_has_an_alert_state():
    alert = Alert.from_dict({"fingerprint": "f", "kpi": "k", "name": "K", "state": "resolved",
                             "severity": "warning", "status": "ok", "value": 1.0, "unit": "count",
                             "period": None, "slice": {}, "thresholds": {}, "message": "m"})
    assert alert.state is AlertState.RESOLVED
    with pytest.raises(ValueError):
        Alert.from_dict({**alert.to_dict(), "state": "exploded"})


def test_alert_data_is_plain_strings():
    alert = Alert(fingerprint="f", kpi="k", name="K", state=AlertState.FIRING, severity="info",
                  status="ok", value=1.0, unit="count", period=None, slice={}, thresholds={},
                  message="m")
    for data in (alert.to_dict(), alert.payload()["data"]):
        assert type(data["state"]) is str and data["state"] == "firing"
    assert json.loads(json.dumps(alert.payload()))["data"]["state"] == "firing"
    # A plain str, so even a strict dumper (yaml.safe_dump) can write it.
    assert "state: firing" in yaml.safe_dump(alert.to_dict())


def test_simulate_gives_plain_string_states(tmp_path):
    engine = Engine.load(write_kpis(tmp_path))
    steps = [{"value": 4.0}, {"value": 4.0}, {"value": 1.0}]
    produced = simulate(engine.definitions["cpc"], steps)
    states = [[a["state"] for a in step] for step in produced]
    assert states == [[], ["firing"], ["resolved"]]
    assert all(type(a["state"]) is str for step in produced for a in step)


def test_alerts_list_json_shows_the_string_values(tmp_path):
    write_kpis(tmp_path)
    (tmp_path / "kpiforge.yaml").write_text("definitions: [kpis.yaml]\nstate: alerts.db\n")
    engine = Engine.load(tmp_path / "kpis.yaml")
    dispatch(engine, [record("cpc", "2026-10", 4.0, "warning"),
                      record("ctr", "2026-10", 1.0, "warning", unit="percent")],
             project_dir=tmp_path, state_path="alerts.db", sinks={}, routes=[])
    proc = subprocess.run([sys.executable, "-m", "kpiforge", "alerts", "list", "--format", "json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"state": "firing"' in proc.stdout and '"state": "pending"' in proc.stdout
    states = {a["kpi"]: a["state"] for a in json.loads(proc.stdout)["alerts"]}
    assert states == {"cpc": "pending", "ctr": "firing"}


def test_import_kpiforge_loads_neither_jinja2_nor_sqlite3():
    code = ("import sys, kpiforge; kpiforge.AlertState.FIRING; "
            "print(sorted(m for m in ('jinja2', 'sqlite3', '_sqlite3', 'kpiforge.alerts') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
