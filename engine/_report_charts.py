"""The report's charts: Vega-Lite specifications built with altair, rendered to SVG offline by
vl-convert (no browser, no network). Both come with the ``report`` extra and are imported only
when a chart is drawn, so ``kpiforge report --format json`` and the rest of kpiforge never
need them.

A trend is a line over the last periods on top of the KPI's status bands (each band classified
by the engine's own rule, :func:`kpiforge._report.threshold_bands`) and, for a KPI with an
anomaly rule, the expected range as a shaded area; a breakdown is one bar per slice, coloured
by its status. Annotations (kpiforge annotate) are dashed vertical rules at their periods,
numbered as the report's "Context" list numbers them. The SVG is made to scale (``viewBox``, no
fixed size) and its
ids are prefixed, so that many charts can sit in one HTML page.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from ._report import chart_domain, slice_label, threshold_bands
from .errors import MissingExtraError

__all__ = ["ANNOTATION_COLOUR", "STATUS_COLOURS", "annotation_layer", "breakdown_svg", "inline_svg",
           "load_chart_libraries", "trend_svg"]

# the same colours as the HTML's status dots (report.html.j2); "ok" is a neutral band
STATUS_COLOURS = {"good": "#2e7d32", "ok": "#90a4ae", "warning": "#ef8f00",
                  "critical": "#c62828", "unknown": "#9e9e9e"}
_WIDTH, _HEIGHT = 460, 150
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
# not a status colour: a note is context, not a judgement
ANNOTATION_COLOUR = "#5e35b1"


def load_chart_libraries() -> tuple[Any, Any]:
    """altair and vl_convert, or a :class:`MissingExtraError` saying how to install them."""
    try:
        import altair
        import vl_convert
    except ImportError as exc:
        raise MissingExtraError(
            f"the report's charts need {exc.name or 'altair and vl-convert-python'}, which is "
            "not installed: pip install 'kpiforge[report]' (or --format json, which has no "
            "chart)") from None
    return altair, vl_convert


def _config(alt: Any, chart: Any) -> Any:
    return (chart.properties(width=_WIDTH, height=_HEIGHT, background="white")
            .configure_view(strokeWidth=0)
            .configure_axis(labelFont=_FONT, titleFont=_FONT, labelFontSize=11, grid=False)
            .configure(font=_FONT))


def trend_svg(entry: Mapping[str, Any], chart_id: str, labels: Mapping[str, str],
              annotations: Sequence[Mapping[str, str]] = ()) -> str:
    """The trend of one KPI entry of the report, with its status bands, as SVG;
    ``annotations`` (``period``, ``label``, ``text``) are drawn as rules at their periods."""
    alt, vlc = load_chart_libraries()
    low, high = chart_domain(entry)
    scale = alt.Scale(domain=[low, high], nice=False, zero=False)
    colour = alt.Color("status:N", legend=None, scale=alt.Scale(
        domain=list(STATUS_COLOURS), range=list(STATUS_COLOURS.values())))
    points = list(entry["trend"])
    order = [p["period"] for p in points]
    x = alt.X("period:O", sort=order, title=None, axis=alt.Axis(labelAngle=-45))
    bands = (alt.Chart(alt.Data(values=threshold_bands(entry, low, high)))
             .mark_rect(opacity=0.16)
             .encode(y=alt.Y("y0:Q", scale=scale, title=None), y2="y1:Q", color=colour))
    line = (alt.Chart(alt.Data(values=points)).mark_line(color="#263238", strokeWidth=2)
            .encode(x=x, y=alt.Y("value:Q", scale=scale, title=None)))
    dots = (alt.Chart(alt.Data(values=[p for p in points if p["value"] is not None]))
            .mark_point(filled=True, size=45, opacity=1)
            .encode(x=x, y=alt.Y("value:Q", scale=scale), color=colour))
    chart = _config(alt, alt.layer(bands, *_expected_band(alt, points, x, scale),
                                   *annotation_layer(alt, x, annotations), line, dots)
                    .properties(description=labels.get("trend", "trend")))
    return _portable(vlc.vegalite_to_svg(chart.to_dict()), chart_id)


def annotation_layer(alt: Any, x: Any, annotations: Sequence[Mapping[str, str]]) -> list[Any]:
    """A dashed rule at each annotated period of the x axis ``x``, with the annotations'
    numbers at its top; their words go to screen readers (``aria-label``, escaped by Vega).
    Several annotations of one period share its rule."""
    by_period: dict[str, list[Mapping[str, str]]] = {}
    for a in annotations:
        by_period.setdefault(a["period"], []).append(a)
    if not by_period:
        return []
    rows = [{"period": period, "label": ", ".join(a["label"] for a in notes),
             "description": "; ".join(f"{a['label']}: {a['text']}" for a in notes)}
            for period, notes in by_period.items()]
    data = alt.Data(values=rows)
    rule = (alt.Chart(data, name="annotation").mark_rule(color=ANNOTATION_COLOUR, strokeWidth=1.5,
                                                         strokeDash=[4, 3])
            .encode(x=x, description="description:N"))
    label = (alt.Chart(data, name="annotation_label")
             .mark_text(align="left", baseline="top", dx=3, dy=1, fontSize=10, fontWeight="bold",
                        color=ANNOTATION_COLOUR)
             .encode(x=x, y=alt.value(0), text="label:N", description="description:N"))
    return [rule, label]


def _expected_band(alt: Any, points: list[Mapping[str, Any]], x: Any, scale: Any) -> list[Any]:
    """The expected range of a KPI with an anomaly rule, as an area under the line (none when
    no period has one): the value is outside the band exactly when the anomaly rule fires."""
    band = [p for p in points if p.get("expected_low") is not None
            and p.get("expected_high") is not None]
    if not band:
        return []
    return [alt.Chart(alt.Data(values=band), description="expected range")
            .mark_area(color="#5c6bc0", opacity=0.18, interpolate="linear")
            .encode(x=x, y=alt.Y("expected_low:Q", scale=scale, title=None),
                    y2="expected_high:Q")]


def breakdown_svg(entry: Mapping[str, Any], chart_id: str, labels: Mapping[str, str]) -> str:
    """One bar per slice of the breakdown (the report's ``by``), coloured by status."""
    alt, vlc = load_chart_libraries()
    rows = [{"slice": slice_label(b["slice"]), "value": b["value"], "status": b["status"]}
            for b in entry["breakdown"] if b["value"] is not None]
    colour = alt.Color("status:N", legend=None, scale=alt.Scale(
        domain=list(STATUS_COLOURS), range=list(STATUS_COLOURS.values())))
    chart = (alt.Chart(alt.Data(values=rows)).mark_bar()
             .encode(y=alt.Y("slice:N", sort="-x", title=None),
                     x=alt.X("value:Q", title=None), color=colour))
    chart = _config(alt, chart.properties(description=labels.get("breakdown", "breakdown")))
    chart = chart.properties(height=max(60, 22 * len(rows)))
    return _portable(vlc.vegalite_to_svg(chart.to_dict()), chart_id)


_ID = re.compile(r'\bid="([^"]+)"')


def _portable(svg: str, chart_id: str) -> str:
    """The SVG with ids unique to this chart, marked for the tests and screen readers."""
    for name in set(_ID.findall(svg)):
        new = f"{chart_id}-{name}"
        svg = (svg.replace(f'id="{name}"', f'id="{new}"').replace(f"url(#{name})", f"url(#{new})")
               .replace(f'href="#{name}"', f'href="#{new}"'))
    return svg.replace("<svg", f'<svg data-chart="{chart_id}" role="img"', 1)


def inline_svg(svg: str) -> str:
    """The SVG for inclusion in HTML: no namespace declaration is needed there (so the page
    holds no URL at all, not even the namespaces' names), and without its fixed size it
    scales to the width of its container (its viewBox keeps the proportions)."""
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg, count=2)
    return re.sub(r'^(<svg[^>]*?) width="[\d.]+" height="[\d.]+"', r"\1", svg, count=1)
