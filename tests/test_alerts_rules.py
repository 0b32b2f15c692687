"""Alert rules and the state machine, through the pure ``simulate`` function and the parts."""

from __future__ import annotations

import pytest

from kpiforge import Engine, KpiforgeError
from kpiforge.alerts import simulate
from kpiforge.alerts._rules import fingerprint, parse_duration, rule_for
from kpiforge.alerts._state import advance, decide, new_row
from tests.alert_servers import write_kpis


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Engine.load(write_kpis(tmp_path_factory.mktemp("kpis")))


@pytest.mark.parametrize("text, seconds", [
    (90, 90.0), (1.5, 1.5), ("90s", 90.0), ("500ms", 0.5), ("15m", 900.0), ("4h", 14400.0),
    ("1d", 86400.0), ("1w", 604800.0), ("1h30m", 5400.0), ("0s", 0.0), ("2d", 172800.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "d", "1d foo", "-1s", True, None, "1e9d", [1]])
def test_parse_duration_rejects(text):
    with pytest.raises(KpiforgeError):
        parse_duration(text, field_name="alerting.repeat_interval")


def test_fingerprint_is_stable_and_order_independent():
    a = fingerprint("cpc", {"country": "FR", "channel": "ads"})
    b = fingerprint("cpc", {"channel": "ads", "country": "FR"})
    assert a == b and len(a) == 16
    assert a != fingerprint("cpc", {"country": "DE", "channel": "ads"})
    assert a != fingerprint("ctr", {"country": "FR", "channel": "ads"})
    assert fingerprint("cpc", {}) == fingerprint("cpc", None)
    # the value's type does not split a series: a slice read as 2026 or "2026" is one alert
    assert fingerprint("cpc", {"year": 2026}) == fingerprint("cpc", {"year": "2026"})


def test_default_rule_fires_on_warning_and_critical(engine):
    rule = rule_for(engine["ctr"])
    assert rule.on == ("warning", "critical") and rule.steps_to_fire == 1
    cases = {"good": False, "ok": False, "unknown": False, "warning": True, "critical": True}
    for status, active in cases.items():
        condition = rule.evaluate({"status": status, "value": 1.0})
        assert condition.active is active, status
    assert rule.evaluate({"status": "critical"}).severity == "critical"
    assert rule.evaluate({"status": "warning"}).severity == "warning"


def test_rules_without_thresholds_or_disabled(engine):
    assert rule_for(engine["quiet"]) is None
    revenue = rule_for(engine["revenue"])
    assert revenue.on == () and revenue.change.drop_pct == 20
    assert rule_for(engine["sticky"]).severity == "critical"


@pytest.mark.parametrize("record, active, pct", [
    ({"status": "ok", "value": 79.0, "previous": 100.0}, True, -21.0),
    ({"status": "ok", "value": 80.0, "previous": 100.0}, True, -20.0),
    ({"status": "ok", "value": 81.0, "previous": 100.0}, False, -19.0),
    ({"status": "ok", "value": 150.0, "previous": 100.0}, False, 50.0),
    ({"status": "ok", "value": 10.0, "previous": 0.0}, False, None),
    ({"status": "ok", "value": None, "previous": 100.0}, False, None),
    ({"status": "ok", "value": 10.0, "change_pct": -35.0}, True, -35.0),
])
def test_change_rule(engine, record, active, pct):
    condition = rule_for(engine["revenue"]).evaluate(record)
    assert condition.active is active
    assert condition.change_pct == pytest.approx(pct) if pct is not None else condition.change_pct is None
    if active:
        assert condition.severity == "warning"


def test_change_vs_year_uses_previous_year(engine):
    from kpiforge.alerts._rules import Change, Rule

    rule = Rule(kpi="revenue", on=(), change=Change("year", rise_pct=10))
    assert rule.evaluate({"value": 120.0, "previous": 200.0, "previous_year": 100.0}).active
    assert not rule.evaluate({"value": 120.0, "previous": 100.0, "previous_year": 200.0}).active


def states(result):
    return [[(n["state"], n["severity"], n["kind"]) for n in step] for step in result]


def test_simulate_for_two_fires_on_second_consecutive(engine):
    result = simulate(engine["cpc"], [
        {"period": "2026-01", "value": 4.0},   # warning: pending
        {"period": "2026-02", "value": 1.0},   # good: back to inactive, nothing sent
        {"period": "2026-03", "value": 4.0},   # pending again (the count restarted)
        {"period": "2026-04", "value": 4.5},   # second in a row: fires
        {"period": "2026-05", "value": 4.5},   # still firing, no repeat (clock stands still)
        {"period": "2026-06", "value": 1.0},   # resolved, once
        {"period": "2026-07", "value": 1.0},   # nothing
    ])
    assert states(result) == [[], [], [], [("firing", "warning", "firing")], [],
                              [("resolved", "warning", "resolved")], []]
    assert result[3][0]["message"].startswith("Cost per click is warning: 4.50 EUR")
    assert result[5][0]["message"].startswith("Cost per click recovered")


def test_simulate_same_period_twice_is_not_two_evaluations(engine):
    result = simulate(engine["cpc"], [
        {"period": "2026-01", "value": 4.0},
        {"period": "2026-01", "value": 4.0},
        {"period": "2026-01", "value": 4.0},
    ])
    assert result == [[], [], []]
    # ...but the next period is the second consecutive one
    result = simulate(engine["cpc"], [
        {"period": "2026-01", "value": 4.0}, {"period": "2026-01", "value": 4.0},
        {"period": "2026-02", "value": 4.0},
    ])
    assert states(result) == [[], [], [("firing", "warning", "firing")]]


def test_simulate_repeat_interval_and_severity_change(engine):
    result = simulate(engine["ctr"], [
        {"period": "2026-01-01", "value": 1.0, "now": "2026-01-01T08:00:00Z"},
        {"period": "2026-01-02", "value": 1.0, "now": "2026-01-01T20:00:00Z"},
        {"period": "2026-01-03", "value": 1.2, "now": "2026-01-02T08:00:00Z"},
        {"period": "2026-01-04", "value": 0.1, "now": "2026-01-02T09:00:00Z"},
        {"period": "2026-01-05", "value": 0.1, "now": "2026-01-02T10:00:00Z"},
        {"period": "2026-01-06", "value": 1.0, "now": "2026-01-02T11:00:00Z"},
        {"period": "2026-01-07", "value": 5.0, "now": "2026-01-02T12:00:00Z"},
    ], alerting={"repeat_interval": "1d"})
    assert states(result) == [
        [("firing", "warning", "firing")],
        [],                                      # 12 h later: within repeat_interval
        [("firing", "warning", "repeat")],       # 24 h later: repeated
        [("firing", "critical", "firing")],      # worse: at once
        [],
        [("firing", "warning", "firing")],       # better but still firing: at once too
        [("resolved", "warning", "resolved")],
    ]


def test_simulate_keep_firing_for_and_fixed_severity(engine):
    result = simulate(engine["sticky"], [
        {"period": "p1", "value": 7.0},    # warning status, severity fixed to critical
        {"period": "p2", "value": 50.0},   # clears: kept firing for one evaluation
        {"period": "p3", "value": 7.0},    # active again: still the same episode, nothing new
        {"period": "p4", "value": 50.0},
        {"period": "p5", "value": 50.0},   # second clear evaluation in a row: resolved
    ])
    assert states(result) == [[("firing", "critical", "firing")], [], [], [],
                              [("resolved", "critical", "resolved")]]


def test_simulate_send_resolved_false(engine):
    result = simulate(engine["ctr"], [{"value": 1.0}, {"value": 5.0}, {"value": 1.0}],
                      alerting={"send_resolved": False})
    # no resolved message, yet the next episode notifies again
    assert states(result) == [[("firing", "warning", "firing")], [], [("firing", "warning", "firing")]]


def test_simulate_change_rule_and_template(engine):
    result = simulate(engine["revenue"], [
        {"period": "2026-01", "value": 100.0, "previous": 90.0},
        {"period": "2026-02", "value": 70.0, "previous": 100.0},
    ])
    assert result[0] == []
    [alert] = result[1]
    assert alert["state"] == "firing" and alert["severity"] == "warning"
    assert alert["message"] == "Revenue fell ▼ -30.0 % to 70.00 EUR"


def test_simulate_slices_are_separate_alerts(engine):
    result = simulate(engine["ctr"], [
        {"period": "2026-01", "value": 1.0, "slice": {"country": "FR"}},
        {"period": "2026-01", "value": 1.0, "slice": {"country": "DE"}},
        {"period": "2026-02", "value": 5.0, "slice": {"country": "FR"}},
    ])
    assert [len(step) for step in result] == [1, 1, 1]
    assert result[0][0]["fingerprint"] != result[1][0]["fingerprint"]
    assert result[2][0]["state"] == "resolved" and result[2][0]["slice"] == {"country": "FR"}


def test_simulate_explicit_status_and_unknown(engine):
    from types import SimpleNamespace

    definition = SimpleNamespace(**{f: getattr(engine["ctr"], f) for f in (
        "id", "thresholds", "unit", "direction", "target", "tolerance", "currency", "category",
        "owner", "label", "text")}, alerts={"on": ["unknown", "critical"]})
    result = simulate(definition, [{"value": None, "status": "unknown"}, {"value": 1.0}])
    assert states(result) == [[("firing", "warning", "firing")], [("resolved", "warning", "resolved")]]


def test_older_period_is_ignored():
    row = new_row("f", "k", {})
    row = advance(row, active=True, severity="warning", step_key="2026-05", steps_to_fire=1,
                  keep_firing_for=0, now=0.0)
    assert row["state"] == "firing"
    assert advance(row, active=False, severity="info", step_key="2026-04", steps_to_fire=1,
                   keep_firing_for=0, now=1.0) is None


def test_corrected_value_for_same_period_replays_the_step():
    row = new_row("f", "k", {})
    fired = advance(row, active=True, severity="warning", step_key="2026-05", steps_to_fire=1,
                    keep_firing_for=0, now=0.0)
    fired["notified_state"], fired["notified_episode"] = "firing", fired["episode"]
    fired["notified_severity"], fired["notified_at"] = "warning", 0.0
    corrected = advance(fired, active=False, severity="info", step_key="2026-05",
                        steps_to_fire=1, keep_firing_for=0, now=1.0)
    assert corrected["state"] == "inactive"
    # the world was told it fired: it must hear that it no longer does
    assert decide(corrected, now=1.0, repeat_interval=60, send_resolved=True) == "resolved"
