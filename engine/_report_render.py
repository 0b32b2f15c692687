"""The report's data (:func:`kpiforge._report.build_report`) as one HTML file, or Markdown
with its charts as SVG files beside it.

The HTML is self-contained: its CSS is inline, its charts are inline SVG, it has no script and
names no URL, so it opens without a network, on a phone (one column under 40 rem, nothing
wider than the screen) and on paper (``@media print``). The words come from
``templates/report_strings.yaml``; numbers are written the language's way.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import jinja2
import yaml
from markupsafe import Markup

from ._format import format_change, format_value

__all__ = ["LANGUAGES", "UI", "render_html", "render_json", "render_markdown", "report_name"]


def _load_strings() -> dict[str, dict[str, Any]]:
    raw = resources.files("kpiforge").joinpath("templates", "report_strings.yaml").read_text("utf-8")
    return dict(yaml.safe_load(raw))


UI: dict[str, dict[str, Any]] = _load_strings()
LANGUAGES = tuple(UI)


def report_name(data: Mapping[str, Any]) -> str:
    """``report-month-2026-10-en``: the file name of a report, without its extension."""
    return f"report-{data['grain']}-{data['period']}-{data['lang']}"


def render_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def _localise(text: str, lang: str) -> str:
    """``1,234.5 %`` written in ``lang`` (``1 234,5 %`` in French, with narrow spaces)."""
    thousands, decimal = UI[lang]["number"]
    return text.replace(",", "\0").replace(".", decimal).replace("\0", thousands)


def _value(value: float | None, entry: Mapping[str, Any], lang: str) -> str:
    return _localise(format_value(value, entry["unit"], entry["currency"]), lang)


def _share(value: float | None, lang: str) -> str:
    return "—" if value is None else _localise(f"{value * 100:.0f} %", lang)


def _charts(data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Every chart of the report as SVG, by KPI: ``trend`` and, with a breakdown, ``breakdown``."""
    from ._report_charts import breakdown_svg, trend_svg

    ui = UI[data["lang"]]
    labels = {"trend": ui["trend"].format(n=len(data["periods"])),
              "breakdown": ui["breakdown"].format(dim=data["by"] or "")}
    shown = dict.fromkeys(k for s in data["sections"] for k in s["kpis"])
    notes = {a["number"]: a for a in data.get("annotations", ())}
    charts: dict[str, dict[str, str]] = {}
    for kpi in shown:
        entry = data["kpis"][kpi]
        # a slice's note is about a series the trend (the totals) does not draw
        marks = [{"period": notes[n]["at"], "label": str(n), "text": notes[n]["text"]}
                 for n in entry.get("annotations", ()) if notes[n]["at"] and not notes[n]["slice"]]
        charts[kpi] = {"trend": trend_svg(entry, f"trend-{kpi}", labels, marks)}
        if any(b["value"] is not None for b in entry["breakdown"]):
            charts[kpi]["breakdown"] = breakdown_svg(entry, f"by-{kpi}", labels)
    return charts


def _view(data: Mapping[str, Any]) -> dict[str, Any]:
    """What the templates show, as text: values, changes and statuses in the report's language."""
    lang = data["lang"]
    ui = UI[lang]
    kpis = {}
    for kpi, e in data["kpis"].items():
        kpis[kpi] = {
            "value": _value(e["value"], e, lang),
            "status": ui["statuses"].get(e["status"], e["status"]),
            "change_previous": _localise(format_change(e["change_pct"]), lang),
            "change_year": _localise(format_change(e["change_pct_year"]), lang),
            "previous": _value(e["previous"], e, lang),
            "previous_year": _value(e["previous_year"], e, lang),
            # a KPI with an anomaly rule: the range its value is expected in (else "")
            "expected_range": ("" if e.get("expected_low") is None or e.get("expected_high") is None
                               else f"{_value(e['expected_low'], e, lang)} – "
                                    f"{_value(e['expected_high'], e, lang)}"),
            "breakdown": [{"slice": ", ".join("∅" if v is None else str(v)
                                              for v in b["slice"].values()),
                           "value": _value(b["value"], e, lang),
                           "status": b["status"],
                           "status_text": ui["statuses"].get(b["status"], b["status"]),
                           "reason": b["reason"] or ""} for b in e["breakdown"]],
        }
    progress = [{**p, "label": _objective_label(data, p["objective"]),
                 "value_text": _value(p["value"], data["kpis"].get(p["kpi"], _PLAIN), lang),
                 "target_text": _value(p["target"], data["kpis"].get(p["kpi"], _PLAIN), lang),
                 "progress_text": _share(p["progress"], lang),
                 "expected_text": _share(p["expected"], lang),
                 "status_text": ui["objective_statuses"].get(p["status"], p["status"])}
                for p in data["objectives"]]
    return {"kpis": kpis, "progress": progress,
            "title": ui["title"].format(grain=ui["grains"][data["grain"]], period=data["period"]),
            "range": ui["range"].format(start=data["start"], end=data["end"],
                                        previous=data["previous_period"], year=data["year_period"])}


_PLAIN = {"unit": "ratio", "currency": None}


def _objective_label(data: Mapping[str, Any], objective: str) -> str:
    for section in data["sections"]:
        if section["objective"] == objective:
            return str(section["label"])
    return objective


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("kpiforge", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True)


def render_html(data: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    from ._report_charts import STATUS_COLOURS, inline_svg

    charts = {k: {name: inline_svg(svg) for name, svg in c.items()}
              for k, c in _charts(data).items()}
    return _environment().get_template("report.html.j2").render(
        data=data, ui=UI[data["lang"]], view=_view(data), charts=charts, colours=STATUS_COLOURS)


def render_markdown(data: Mapping[str, Any], out_dir: Path) -> Path:
    """The report as ``<name>.md`` in ``out_dir``, each chart an SVG file beside it."""
    name = report_name(data)
    charts = _charts(data)
    files: dict[str, dict[str, str]] = {}
    for kpi, named in charts.items():
        for kind, svg in named.items():
            file = f"{name}-{kind}-{kpi}.svg"
            (out_dir / file).write_text(svg, encoding="utf-8")
            files.setdefault(kpi, {})[kind] = file
    text = _environment().get_template("report.md.j2").render(
        data=data, ui=UI[data["lang"]], view=_view(data), files=files, md=_md)
    path = out_dir / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    return path


def _md(text: Any) -> Markup:
    """Text from definitions or data, safe in a Markdown table cell or line. Marked safe for
    the template's HTML escaping: ``<`` is already ``\\<`` here, which Markdown shows as ``<``
    (escaped again, it would show as ``&lt;``)."""
    out = str(text if text is not None else "").replace("\\", "\\\\").replace("|", "\\|")
    for char in "*_`[]<>#&":
        out = out.replace(char, "\\" + char)
    return Markup(" ".join(out.split()))
