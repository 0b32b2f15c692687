"""Schema-valid YAML of one KPI -> a frozen :class:`Definition` (no checks across KPIs here)."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from ._model import (Definition, Direction, FieldSpec, InputSpec, Objective, ObjectiveTarget,
                     Parameter, ThresholdSource, Thresholds, Unit)
from ._yamlio import Document

__all__ = ["build_definition", "build_objective", "split_unit"]


def split_unit(raw: Any) -> tuple[str | None, str | None, str | None]:
    """A unit as written (``count``, ``{count: clicks}``, ``{currency: JPY}``) as
    (base unit, what is counted, currency)."""
    if raw is None:
        return None, None, None
    if isinstance(raw, Mapping):
        (base, detail), = raw.items()
        return (str(base), str(detail), None) if base == "count" else (str(base), None, str(detail))
    return str(raw), None, None


def _range(raw: Any) -> tuple[float | None, float | None] | None:
    if raw is None:
        return None
    low, high = raw
    return (None if low is None else float(low), None if high is None else float(high))


def _texts(raw: Any) -> Mapping[str, str]:
    return MappingProxyType(dict(raw or {}))


def _input(name: str, spec: Mapping[str, Any] | None) -> InputSpec:
    spec = spec or {}
    unit, count_of, currency = split_unit(spec.get("unit"))
    return InputSpec(
        name, spec.get("description", ""), unit, _texts(spec.get("descriptions")), count_of,
        currency, _range(spec.get("range")), spec.get("additivity", "additive"),
        spec.get("time_agg"), spec.get("agg"), spec.get("field"), spec.get("where"),
        tuple(spec.get("aliases") or ()))


def _field(name: str, spec: Mapping[str, Any] | None) -> FieldSpec:
    spec = spec or {}
    unit, count_of, currency = split_unit(spec.get("unit"))
    return FieldSpec(name, spec.get("description", ""), _texts(spec.get("descriptions")), unit,
                     count_of, currency, _range(spec.get("range")))


def _parameter(name: str, spec: Mapping[str, Any]) -> Parameter:
    return Parameter(name, float(spec["default"]), tuple(float(v) for v in spec.get("allowed") or ()),
                     spec.get("description", ""), _texts(spec.get("descriptions")))


def _sources(raw: Any) -> tuple[ThresholdSource, ...]:
    """``thresholds.source`` as written: one source or a list of them."""
    items = [] if raw is None else [raw] if isinstance(raw, Mapping) else list(raw)
    return tuple(ThresholdSource(s["kind"], tuple(s.get("levels") or ()), s.get("text", ""),
                                 s.get("url", "")) for s in items)


def build_definition(doc: Document, where: tuple[str | int, ...], data: Mapping[str, Any],
                     file_currency: str | None, default_currency: str) -> Definition:
    raw_thresholds = dict(data.get("thresholds") or {})
    threshold_currency = raw_thresholds.pop("currency", None)
    source = raw_thresholds.pop("source", None)
    levels = {k: float(raw_thresholds[k]) if k in raw_thresholds else None
              for k in ("good", "warning", "critical")}
    thresholds = Thresholds(levels["good"], levels["warning"], levels["critical"],
                            currency=threshold_currency, sources=_sources(source))
    unit_name, _, unit_currency = split_unit(data["unit"])
    unit = Unit(str(unit_name))  # the schema requires a unit on every KPI
    currency = data.get("currency") or unit_currency or file_currency
    if unit is Unit.CURRENCY and not currency:
        currency = default_currency
    category = data.get("category") or Path(doc.path).parent.name
    return Definition(
        id=data["id"],
        name=data["name"],
        formula=data["formula"],
        unit=unit,
        direction=Direction(data["direction"]),
        inputs=MappingProxyType({name: _input(name, spec)
                                 for name, spec in (data.get("inputs") or {}).items()}),
        thresholds=thresholds,
        target=float(data["target"]) if "target" in data else None,
        tolerance=float(data["tolerance"]) if "tolerance" in data else None,
        currency=currency,
        category=category,
        description=data.get("description", ""),
        descriptions=_texts(data.get("descriptions")),
        labels=_texts(data.get("labels")),
        objectives=tuple(data.get("objectives") or ()),
        owner=data.get("owner", ""),
        tags=tuple(data.get("tags") or ()),
        version=int(data.get("version", 1)),
        status=data.get("status", "draft"),
        replaced_by=data.get("replaced_by"),
        vanity=bool(data.get("vanity", False)),
        alerts=MappingProxyType(dict(data["alerts"])) if data.get("alerts") else None,
        fields=MappingProxyType({name: _field(name, spec)
                                 for name, spec in (data.get("fields") or {}).items()}),
        parameters=MappingProxyType({name: _parameter(name, spec)
                                     for name, spec in (data.get("parameters") or {}).items()}),
        path=doc.path,
        line=doc.position(where)[0] if where else 1,
    )


def build_objective(doc: Document, where: tuple[str | int, ...], item: Mapping[str, Any],
                    kpis: tuple[str, ...]) -> Objective:
    raw = item.get("target")
    target = None if raw is None else ObjectiveTarget(
        raw["kpi"], float(raw["value"]), raw.get("deadline"),
        None if raw.get("baseline") is None else float(raw["baseline"]), raw.get("start"),
        raw.get("owner") or item.get("owner", ""))
    return Objective(item["id"], _texts(item["labels"]), _texts(item.get("descriptions")), kpis,
                     doc.path, doc.position(where)[0], item.get("owner", ""), target)
