"""``kpiforge serve``'s JSON API (``/api/...``): read-only views of a project's definitions,
live runs and stored history, plus the OpenAPI 3 document describing them.

Each view is a plain function of the project and the query, so the HTML pages
(kpiforge._serve) show exactly the numbers the API returns, which are ``Project.run``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import KpiforgeError

__all__ = ["ApiError", "GRAINS", "annotations_view", "history_view", "kpi_view", "kpis_view",
           "openapi_document", "run_view"]

GRAINS = ("day", "week", "month", "quarter", "year")


class ApiError(Exception):
    """A request the API answers with a JSON 4xx (``status``) and a message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _definition(project: Any, kpi: str) -> Any:
    definitions = project.engine.definitions
    if kpi not in definitions:
        from .errors import did_you_mean

        raise ApiError(404, f"unknown KPI '{kpi}'{did_you_mean(kpi, list(definitions))}")
    return definitions[kpi]


def _grain(grain: str | None) -> str | None:
    if grain in (None, ""):
        return None
    if grain not in GRAINS:
        raise ApiError(400, f"grain: '{grain}' is not one of {', '.join(GRAINS)}")
    return grain


def _by(project: Any, by: str | None) -> list[str]:
    dims = [d for d in (by or "").split(",") if d]
    for dim in dims:
        if dim not in project.dimensions():
            from .errors import did_you_mean

            raise ApiError(400, f"by: no source has a dimension '{dim}'"
                                f"{did_you_mean(dim, project.dimensions())}")
    return dims


def kpis_view(project: Any, lang: str = "en") -> dict[str, Any]:
    """Every KPI with its label and objectives, and the objectives that group them."""
    engine = project.engine
    return {
        "kpis": [{"id": d.id, "name": d.name, "label": d.label(lang), "unit": str(d.unit),
                  "direction": str(d.direction), "objectives": list(d.objectives)}
                 for d in engine.definitions.values()],
        "objectives": [{"id": o.id, "label": o.label(lang), "owner": o.owner,
                        "kpis": list(o.kpis)} for o in engine.objectives.values()],
        "dimensions": list(project.dimensions()),
    }


def kpi_view(project: Any, kpi: str) -> dict[str, Any]:
    """One KPI's definition as stored (formula, inputs, thresholds and their provenance)."""
    definition = _definition(project, kpi)
    data = definition.to_dict()
    thresholds = definition.thresholds
    data["thresholds"] = thresholds.to_dict()
    # where the thresholds' numbers come from when the project converted them
    data["thresholds_provenance"] = {"currency": thresholds.currency,
                                     "converted_from": thresholds.converted_from,
                                     "fx_rate": thresholds.fx_rate}
    data["source"] = {"path": definition.path, "line": definition.line}
    return _jsonable(data)


def run_view(project: Any, query: Mapping[str, str]) -> dict[str, Any]:
    """``Project.run(grain=, period=, last=, by=, kpis=)``'s records, as ``kpiforge run``
    prints them in JSON."""
    kpis = [k for k in query.get("kpis", "").split(",") if k]
    for kpi in kpis:
        _definition(project, kpi)
    last = query.get("last")
    if last is not None and (not last.isdigit() or not 1 <= int(last) <= 400):
        raise ApiError(400, f"last: '{last}' is not a whole number from 1 to 400")
    try:
        result = project.run(grain=_grain(query.get("grain")), period=query.get("period") or None,
                             by=_by(project, query.get("by")), kpis=kpis or None,
                             last=int(last) if last else None)
    except KpiforgeError as exc:
        raise ApiError(400, str(exc)) from None
    return {"grain": result.grain, "periods": list(result.periods), "by": list(result.by),
            **_jsonable(result.to_dict())}


def history_view(project: Any, kpi: str, query: Mapping[str, str]) -> dict[str, Any]:
    """The stored values of one KPI (``Project.history``)."""
    _definition(project, kpi)
    last = query.get("last")
    if last is not None and not last.isdigit():
        raise ApiError(400, f"last: '{last}' is not a whole number")
    try:
        history = project.history(kpi, by=_by(project, query.get("by")),
                                  grain=_grain(query.get("grain")),
                                  last=int(last) if last else None)
    except KpiforgeError as exc:
        raise ApiError(400, str(exc)) from None
    return {"kpi": kpi, "records": _jsonable(history.to_records()),
            "annotations": [a.to_dict() for a in history.annotations]}


def annotations_view(project: Any, kpi: str, query: Mapping[str, str]) -> dict[str, Any]:
    """The annotations about one KPI (``Project.annotations``), those about every KPI included;
    written by ``kpiforge annotate``, never here."""
    _definition(project, kpi)
    try:
        found = project.annotations(kpi, period=query.get("period") or None)
    except KpiforgeError as exc:
        raise ApiError(400, str(exc)) from None
    return {"kpi": kpi, "annotations": [a.to_dict() for a in found]}


def _jsonable(value: Any) -> Any:
    """Plain JSON values: NaN and infinities (never valid JSON) become null."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _param(name: str, description: str, *, enum: list[str] | None = None,
           where: str = "query", required: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = enum
    return {"name": name, "in": where, "required": required, "description": description,
            "schema": schema}


def _get(summary: str, params: list[dict[str, Any]], schema: str,
         errors: tuple[str, ...] = ("400",)) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema}"}}}}}
    for code in errors:
        responses[code] = {"description": "a bad request", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}
    return {"get": {"summary": summary, "parameters": params, "responses": responses}}


def openapi_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3 description of every ``/api/`` route (all read-only GETs)."""
    grain = _param("grain", "day, week, month, quarter or year", enum=list(GRAINS))
    by = _param("by", "dimensions to split by, comma-separated")
    last = {"name": "last", "in": "query", "required": False,
            "description": "the last N periods", "schema": {"type": "integer", "minimum": 1,
                                                             "maximum": 400}}
    kpi = _param("kpi", "a KPI id", where="path", required=True)
    lang = _param("lang", "en or fr", enum=["en", "fr"])
    obj = {"type": "object"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "kpiforge serve", "version": version,
                 "description": "Read-only: every other method answers 405."},
        "paths": {
            "/api/kpis": _get("KPIs and objectives", [lang], "Kpis", ()),
            "/api/kpis/{kpi}": _get("one KPI's definition", [kpi], "Definition", ("404",)),
            "/api/run": _get("a live run (Project.run)",
                             [grain, _param("period", "2026-10, 2026-W43, 2026-Q4..."), by, last,
                              _param("kpis", "KPI ids, comma-separated")], "Run", ("400", "404")),
            "/api/history/{kpi}": _get("stored values (Project.history)", [kpi, grain, by, last],
                                       "History", ("400", "404")),
            "/api/kpis/{kpi}/annotations": _get(
                "notes on periods written by kpiforge annotate (Project.annotations)",
                [kpi, _param("period", "only those covering a day of it: 2026-10, 2026-W43...")],
                "Annotations", ("400", "404")),
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"],
                      "properties": {"error": {"type": "string"}}},
            "Kpis": {"type": "object", "required": ["kpis", "objectives", "dimensions"],
                     "properties": {"kpis": {"type": "array", "items": obj},
                                    "objectives": {"type": "array", "items": obj},
                                    "dimensions": {"type": "array",
                                                   "items": {"type": "string"}}}},
            "Definition": {"type": "object", "required": ["id", "formula", "thresholds"],
                           "properties": {"id": {"type": "string"},
                                          "formula": {"type": "string"},
                                          "thresholds": obj}},
            "Run": {"type": "object", "required": ["grain", "periods", "results"],
                    "properties": {"grain": {"type": "string"},
                                   "periods": {"type": "array", "items": {"type": "string"}},
                                   "by": {"type": "array", "items": {"type": "string"}},
                                   "results": {"type": "array", "items": obj},
                                   "warnings": {"type": "array", "items": {"type": "string"}},
                                   "objectives": {"type": "array", "items": obj}}},
            "History": {"type": "object", "required": ["kpi", "records", "annotations"],
                        "properties": {"kpi": {"type": "string"},
                                       "records": {"type": "array", "items": obj},
                                       "annotations": {"type": "array", "items": {
                                           "$ref": "#/components/schemas/Annotation"}}}},
            "Annotations": {"type": "object", "required": ["kpi", "annotations"],
                            "properties": {"kpi": {"type": "string"},
                                           "annotations": {"type": "array", "items": {
                                               "$ref": "#/components/schemas/Annotation"}}}},
            "Annotation": {
                "type": "object",
                "required": ["id", "kpi", "period", "grain", "first_day", "last_day", "slice",
                             "text", "author", "created"],
                "properties": {"id": {"type": "integer"},
                               "kpi": {"type": "string",
                                       "description": "a KPI id, or * for every KPI"},
                               "period": {"type": "string"},
                               "grain": {"type": "string", "enum": list(GRAINS)},
                               "first_day": {"type": "string", "format": "date"},
                               "last_day": {"type": "string", "format": "date"},
                               "slice": {"type": "object",
                                         "additionalProperties": {"type": "string"}},
                               "text": {"type": "string", "minLength": 1, "maxLength": 500},
                               "author": {"type": "string"},
                               "created": {"type": "string", "format": "date-time"}}},
        }},
    }
