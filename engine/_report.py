"""``kpiforge report``'s numbers: one period of a project, per objective, as plain data.

Everything the HTML and Markdown reports show comes from :func:`build_report`'s dict (which
``--format json`` prints as it is), so the three formats cannot disagree. It is computed with
two or three runs of the engine, never by re-aggregating in Python:

1. the trend: the last N periods ending with the report's period, with ``compare=["previous",
   "year"]``; the report period's own records (value, status, both changes, the objectives'
   progress) are those of this run, so they equal ``kpiforge run --period P --compare
   previous --compare year``'s;
2. the breakdown, when ``by`` names a dimension: the report period split by it;
3. the period's alerts: a dry-run dispatch of the period's records (nothing sent or recorded).

The annotations (``kpiforge annotate``) about the report's KPIs that cover a day of the trend
are read from the history, numbered by first day; each says whether it covers the report's
period and at which trend period its chart draws it (``at``: none when it began earlier).

A KPI with an anomaly rule also has its expected range (``expected``, ``expected_low``,
``expected_high``) in its entry and in each trend point: the run's numbers, which the trend
chart draws as a band and the alerts compare with.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping, Sequence

from ._periods import parse_period
from ._status import classify
from .errors import KpiforgeError, RunError

__all__ = ["DEFAULT_LAST", "REPORT_GRAINS", "build_report", "chart_domain", "slice_label",
           "threshold_bands"]

REPORT_GRAINS = ("week", "month", "quarter")
_EXPECTED = ("expected", "expected_low", "expected_high", "expected_reason")
# a trend long enough to show the same period a year earlier
DEFAULT_LAST = {"week": 13, "month": 13, "quarter": 8}


def _trend_run(project: Any, grain: str, period: str | None, last: int) -> Any:
    compare = ["previous", "year"]
    if period is None:
        return project.run(grain=grain, last=last, compare=compare)
    wanted = parse_period(period, project.week_start_index)
    if wanted.grain != grain:
        raise RunError(f"--period {period} is a {wanted.grain}, not a {grain} (--grain {grain})")
    first = wanted.shift(-(last - 1))
    return project.run(grain=grain, start=first.start, end=wanted.end - timedelta(days=1),
                       compare=compare)


def _kpi_entry(definition: Any, record: dict[str, Any], lang: str,
               expected: bool = False) -> dict[str, Any]:
    entry = {"kpi": definition.id, "label": definition.label(lang), "unit": str(definition.unit),
             "currency": definition.currency, "direction": str(definition.direction),
             "thresholds": definition.thresholds.to_dict(), "target": definition.target,
             "tolerance": definition.tolerance}
    for key in ("value", "status", "reason", "reason_code", "previous", "change_pct",
                "previous_year", "change_pct_year"):
        entry[key] = record.get(key)
    if expected:  # an anomaly rule: the expected range the alert compares with
        for key in _EXPECTED:
            entry[key] = record.get(key)
    return entry


def _trend_point(record: Any, expected: bool) -> dict[str, Any]:
    point = {"period": record.period, "value": record.value, "status": str(record.status)}
    if expected:  # the band the trend chart draws: the run's own numbers
        point.update(expected=record.expected, expected_low=record.expected_low,
                     expected_high=record.expected_high)
    return point


def _alerts(project: Any, result: Any, period: str, lang: str) -> tuple[list[dict[str, Any]], str | None]:
    """The period's alerts, or why they are unknown: what a dry run of the period's records
    raises now, and the alerts the state holds as firing for the period (a dry run does not
    raise again what was already notified)."""
    try:
        summary = project.dispatch(result, dry_run=True, lang=lang)
        stored = _stored_alerts(project, period)
    except KpiforgeError as exc:
        return [], str(exc)
    alerts = []
    for n in summary.notifications:
        a = n.alert
        if a.period == period:
            alerts.append({"kpi": a.kpi, "label": a.name, "severity": a.severity,
                           "status": a.status, "slice": dict(a.slice), "value": a.value,
                           "message": a.message, "silenced": n.silenced, "source": "dry_run"})
    seen = {(a["kpi"], json.dumps(a["slice"], sort_keys=True)) for a in alerts}
    for row in stored:
        if (row["kpi"], json.dumps(row["slice"], sort_keys=True)) not in seen:
            definition = project.engine.definitions.get(row["kpi"])
            alerts.append({"kpi": row["kpi"],
                           "label": definition.label(lang) if definition else row["kpi"],
                           "severity": row["severity"], "status": row["status"],
                           "slice": row["slice"], "value": row["value"], "message": None,
                           "silenced": False, "source": "state"})
    return alerts, None


def _stored_alerts(project: Any, period: str) -> list[dict[str, Any]]:
    from .alerts import Store, resolve_state_path

    path = resolve_state_path(project.root, project.state)
    if path == ":memory:" or not Path(path).exists():
        return []
    with Store(path) as store:
        return [dict(r) for r in store.alerts() if r["state"] == "firing" and r["period"] == period]


def _context(project: Any, periods: list[str], own: Any,
             kpis: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """The annotations of the report (see the module's doc), or why they could not be read;
    each KPI entry gets the numbers of its own."""
    from ._annotations_store import place_annotations, read_annotations

    ws = project.week_start_index
    last = own.end - timedelta(days=1)
    try:
        found = [a for a in read_annotations(project.history_path,
                                             first=parse_period(periods[0], ws).start, last=last)
                 if any(a.applies_to(k) for k in kpis)]
    except KpiforgeError as exc:
        return [], str(exc)
    where = place_annotations(found, periods, ws)
    notes = []
    for number, a in enumerate(found, 1):
        notes.append({**a.to_dict(), "number": number, "at": where[a.id],
                      "in_period": a.overlaps(own.start, last)})
        for kpi, entry in kpis.items():
            if a.applies_to(kpi):
                entry["annotations"].append(number)
    return notes, None


def build_report(project: Any, *, grain: str, period: str | None = None, last: int | None = None,
                 by: str | None = None, lang: str = "en", alerts: bool = True) -> dict[str, Any]:
    """The report of ``period`` (default: the latest with data) at ``grain`` as JSON-ready data."""
    if grain not in REPORT_GRAINS:
        raise RunError(f"a report is weekly, monthly or quarterly, not by {grain}")
    engine = project.engine
    last = last or DEFAULT_LAST[grain]
    trend_result = _trend_run(project, grain, period, last)
    periods = list(trend_result.periods)
    if not periods:
        raise RunError("no data in the sources for the requested periods")
    period = periods[-1]
    own = parse_period(period, project.week_start_index)
    records = [r for r in trend_result.to_records() if r["period"] == period and not r["slice"]]
    by_kpi = {r["kpi"]: r for r in records}
    kpis: dict[str, dict[str, Any]] = {}
    for kpi, record in by_kpi.items():
        entry = _kpi_entry(engine.definitions[kpi], record, lang, kpi in trend_result.baselines)
        entry["trend"] = [_trend_point(r, kpi in trend_result.baselines)
                          for r in trend_result.records if r.kpi == kpi and not r.slice]
        entry["breakdown"] = []
        entry["annotations"] = []
        kpis[kpi] = entry
    warnings = list(trend_result.warnings)
    if by:
        split = project.run(grain=grain, period=period, by=[by])
        warnings.extend(w for w in split.warnings if w not in warnings)
        for r in split.to_records():
            if r["kpi"] in kpis and r["slice"]:
                kpis[r["kpi"]]["breakdown"].append(
                    {"slice": r["slice"], "value": r["value"], "status": r["status"],
                     "reason": r["reason"]})
        for entry in kpis.values():  # a KPI whose sources cannot be split: no breakdown at all
            if all(b["value"] is None for b in entry["breakdown"]):
                entry["breakdown"] = []
    shown = {k for k, e in kpis.items() if e["value"] is not None}
    sections = []
    for objective in engine.objectives.values():
        members = [k for k in objective.kpis if k in shown]
        if members:
            sections.append({"objective": objective.id, "label": objective.label(lang),
                             "owner": objective.owner, "kpis": members})
    placed = {k for s in sections for k in s["kpis"]}
    others = [k for k in kpis if k in shown and k not in placed]
    if others:
        sections.append({"objective": None, "label": None, "owner": "", "kpis": others})
    annotations, annotations_unknown = _context(project, periods, own, kpis)
    alert_list, alerts_unknown = (_alerts(project, _period_only(trend_result, period), period, lang)
                                  if alerts else ([], None))
    return {
        "grain": grain, "period": period, "lang": lang, "by": by,
        "start": own.start.isoformat(), "end": (own.end - timedelta(days=1)).isoformat(),
        "previous_period": own.previous().label, "year_period": own.year_before().label,
        "periods": periods,
        "sections": sections,
        "kpis": kpis,
        "results": records,
        "objectives": [p.to_dict() for p in trend_result.objective_progress],
        "alerts": alert_list,
        "alerts_unknown": alerts_unknown,
        "annotations": annotations,
        "annotations_unknown": annotations_unknown,
        "not_computed": [{"kpi": k, "label": e["label"], "reason": e["reason"],
                          "reason_code": e["reason_code"]}
                         for k, e in kpis.items() if e["value"] is None],
        "warnings": warnings,
    }


def _period_only(result: Any, period: str) -> Any:
    """``result`` reduced to one period's records: alerts are about the report's period."""
    from dataclasses import replace

    return replace(result, records=tuple(r for r in result.records if r.period == period),
                   periods=(period,))


def threshold_bands(entry: Mapping[str, Any], low: float, high: float) -> list[dict[str, Any]]:
    """The status bands between ``low`` and ``high`` for a KPI entry of the report: each
    interval between two boundaries classified by the engine's own rule at its middle, so a
    band can never say another status than the KPI would get there."""
    from ._model import Direction, Thresholds

    thresholds = Thresholds(**entry["thresholds"])
    direction = Direction(entry["direction"])
    target = entry.get("target")
    bounds = _boundaries(entry)
    edges = sorted({low, high, *(b for b in bounds if low < b < high)})
    bands: list[dict[str, Any]] = []
    for a, b in zip(edges, edges[1:]):
        status = str(classify((a + b) / 2, direction, thresholds, target, entry.get("tolerance")))
        if bands and bands[-1]["status"] == status:
            bands[-1]["y1"] = b
        else:
            bands.append({"y0": a, "y1": b, "status": status})
    return bands


def _boundaries(entry: Mapping[str, Any]) -> list[float]:
    """Where the status changes: the thresholds, or for a ``target`` KPI (whose thresholds are
    distances from the target) the target plus and minus each of them."""
    bounds = [b for b in entry["thresholds"].values() if b is not None]
    if entry["direction"] != "target":
        return bounds
    centre = entry.get("target") or 0.0
    return [centre + s * b for b in bounds + [entry.get("tolerance") or 0.0] for s in (-1, 1)]


def chart_domain(entry: Mapping[str, Any]) -> tuple[float, float]:
    """The y range of a KPI's trend: its values, expected range and thresholds, with some room."""
    values = [p[k] for p in entry["trend"] for k in ("value", "expected_low", "expected_high")
              if p.get(k) is not None]
    values += _boundaries(entry)
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    room = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    bottom = low - room
    if low >= 0 > bottom:  # counts, rates and amounts start at zero, not below
        bottom = 0.0
    return (bottom if math.isfinite(bottom) else low), high + room


def slice_label(slice_: Mapping[str, Any], dims: Sequence[str] = ()) -> str:
    return ", ".join("∅" if slice_.get(d) is None else str(slice_[d]) for d in (dims or slice_))

