"""``kpiforge serve``'s application: a read-only dashboard (HTML pages, French and English)
over a project's live runs and history, and its JSON API (kpiforge._serve_api).

Starlette is imported here only, so ``import kpiforge`` never needs the serve extra. There is
no write route at all: every method but GET and HEAD is answered 405 before routing.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from ._serve_api import (GRAINS, ApiError, annotations_view, history_view, kpi_view, kpis_view,
                         openapi_document, run_view)

__all__ = ["create_app", "load_serve_libraries"]

_BAND = ("expected", "expected_low", "expected_high")  # a trend point's expected range

LANGS = ("en", "fr")


def load_serve_libraries() -> None:
    """Raise a clear error when the serve extra is missing."""
    from .errors import KpiforgeError

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise KpiforgeError("kpiforge serve needs the serve extra: "
                            "pip install 'kpiforge[serve]'") from None


@lru_cache(maxsize=1)
def _strings() -> dict[str, dict[str, str]]:
    import yaml

    text = resources.files("kpiforge.templates").joinpath("serve_strings.yaml").read_text("utf-8")
    data: dict[str, dict[str, str]] = yaml.safe_load(text)
    return data


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("kpiforge", "templates"),
                             autoescape=True)
    return env.get_template("serve.html.j2")


def _lang(query: Any) -> str:
    lang = query.get("lang", "en")
    return lang if lang in LANGS else "en"


def _charts(definition: Any, trend: list[dict[str, Any]], breakdown: list[dict[str, Any]],
            words: dict[str, str], marks: list[dict[str, str]]) -> tuple[str, str]:
    """The report's trend and breakdown charts (kpiforge._report_charts) as inline SVG, when
    the report extra is installed; the tables beside them show the same numbers either way."""
    try:
        from ._report_charts import breakdown_svg, inline_svg, trend_svg

        entry = {"trend": trend, "breakdown": breakdown, "direction": str(definition.direction),
                 "thresholds": definition.thresholds.to_dict()}
        return (inline_svg(trend_svg(entry, "trend", words, marks)),
                inline_svg(breakdown_svg(entry, "breakdown", words)) if breakdown else "")
    except Exception:  # noqa: BLE001 - no chart libraries or nothing to draw: tables only
        return "", ""


def _notes(project: Any, kpi: str, periods: list[str]) -> list[dict[str, Any]]:
    """The annotations about ``kpi`` covering a day of the trend's ``periods``, numbered, each
    with the period its chart draws it at (``at``)."""
    from ._annotations_store import place_annotations, span

    if not periods:
        return []
    ws = project.week_start_index
    first, last = span(periods[0], ws)[0], span(periods[-1], ws)[1]
    from .errors import KpiforgeError

    try:
        found = [a for a in project.annotations(kpi) if a.overlaps(first, last)]
    except KpiforgeError as exc:  # a damaged history file: said on the page, as for history
        raise ApiError(400, str(exc)) from None
    where = place_annotations(found, periods, ws)
    return [{**a.to_dict(), "number": n, "at": where[a.id]} for n, a in enumerate(found, 1)]


def create_app(project: Any) -> Any:
    """The Starlette application serving ``project`` (a :class:`kpiforge.Project`)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from . import __version__

    template = _template()

    def api(view: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return JSONResponse(view(request))
            except ApiError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status)
        return endpoint

    def page(view: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            lang = _lang(request.query_params)
            words = _strings()[lang]
            context: dict[str, Any] = {"lang": lang, "t": words, "grains": GRAINS,
                                       "query": dict(request.query_params),
                                       "path": request.url.path}
            try:
                context.update(view(request, lang, words))
                status = 200
            except ApiError as exc:
                context.update(page="error", error=exc.message)
                status = exc.status
            return HTMLResponse(template.render(**context), status_code=status)
        return endpoint

    def overview(request: Request, lang: str, words: dict[str, str]) -> dict[str, Any]:
        query = dict(request.query_params)
        catalog = kpis_view(project, lang)
        run = run_view(project, {k: v for k, v in query.items() if k in ("grain", "period")})
        totals = {r["kpi"]: r for r in run["results"] if not r["slice"]}
        groups = [{"label": o["label"], "owner": o["owner"], "kpis": o["kpis"]}
                  for o in catalog["objectives"]]
        grouped = {k for o in catalog["objectives"] for k in o["kpis"]}
        rest = [k["id"] for k in catalog["kpis"] if k["id"] not in grouped]
        if rest:
            groups.append({"label": words["other"], "owner": "", "kpis": rest})
        labels = {k["id"]: k["label"] for k in catalog["kpis"]}
        return {"page": "overview", "groups": groups, "labels": labels, "totals": totals,
                "run": run}

    def kpi_page(request: Request, lang: str, words: dict[str, str]) -> dict[str, Any]:
        kpi = request.path_params["kpi"]
        query = dict(request.query_params)
        definition = kpi_view(project, kpi)
        grain = query.get("grain") or None
        trend = run_view(project, {"grain": grain or "", "last": query.get("last", "13"),
                                   "kpis": kpi})
        # with an anomaly rule the run's records carry the expected range: the chart's band
        points = [{"period": r["period"], "value": r["value"], "status": r["status"],
                   **{k: r[k] for k in _BAND if k in r}}
                  for r in trend["results"] if not r["slice"]]
        by = query.get("by") or ""
        breakdown = run_view(project, {"grain": grain or "", "period": query.get("period", ""),
                                       "by": by, "kpis": kpi})["results"] if by else []
        notes = _notes(project, kpi, trend["periods"])
        marks = [{"period": n["at"], "label": str(n["number"]), "text": n["text"]}
                 for n in notes if n["at"] and not n["slice"]]
        chart, breakdown_chart = _charts(project.engine.definitions[kpi], points, breakdown,
                                         words, marks)
        stored = history_view(project, kpi, {"grain": trend["grain"], "last": "13"})["records"]
        return {"page": "kpi", "kpi": definition, "history": stored,
                "label": project.engine.definitions[kpi].label(lang), "trend": points,
                "chart": chart, "breakdown_chart": breakdown_chart, "breakdown": breakdown,
                "by": by, "annotations": notes,
                "dimensions": project.dimensions(), "grain": trend["grain"]}

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document(__version__))

    routes = [
        Route("/", page(overview)),
        Route("/kpi/{kpi}", page(kpi_page)),
        Route("/openapi.json", openapi),
        Route("/api/kpis", api(lambda r: kpis_view(project, _lang(r.query_params)))),
        Route("/api/kpis/{kpi}", api(lambda r: kpi_view(project, r.path_params["kpi"]))),
        Route("/api/run", api(lambda r: run_view(project, r.query_params))),
        Route("/api/kpis/{kpi}/annotations",
              api(lambda r: annotations_view(project, r.path_params["kpi"], r.query_params))),
        Route("/api/history/{kpi}",
              api(lambda r: history_view(project, r.path_params["kpi"], r.query_params))),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"no page at {request.url.path}"}, status_code=404)

    async def server_error(request: Request, exc: Exception) -> Response:
        # a user sees what went wrong, never a traceback
        return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=500)

    app = Starlette(routes=routes, exception_handlers={404: not_found, 500: server_error})

    async def read_only(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
            body = json.dumps({"error": "read-only: only GET is allowed"}).encode()
            await send({"type": "http.response.start", "status": 405, "headers": [
                (b"content-type", b"application/json"), (b"allow", b"GET, HEAD")]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return read_only
