"""The plain data of kpiforge's definitions (what a catalog holds). Frozen dataclasses
throughout; what evaluation returns is in :mod:`._results`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Mapping

from ._thresholds import ThresholdSource, Thresholds

__all__ = [
    "AlertState",
    "Definition",
    "Direction",
    "FieldSpec",
    "InputSpec",
    "Objective",
    "ObjectiveTarget",
    "Parameter",
    "Status",
    "ThresholdSource",
    "Thresholds",
    "Unit",
]


class Status(StrEnum):
    """How a KPI value compares with its thresholds or target; ``unknown`` when it cannot be told."""

    GOOD = "good"
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


class AlertState(StrEnum):
    """Where one alert series is in its lifecycle: inactive -> pending -> firing -> resolved.

    The values are what the state database stores and JSON output shows.
    """

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class Direction(StrEnum):
    """Which way a KPI is better: higher, lower, or close to its ``target``."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"
    TARGET = "target"


class Unit(StrEnum):
    """What a KPI value counts or measures, which decides how it is shown."""

    COUNT = "count"
    PERCENT = "percent"
    RATIO = "ratio"
    CURRENCY = "currency"
    SECONDS = "seconds"
    SCORE = "score"


_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One input of a definition: what it means and how it may be aggregated.

    ``unit`` is the base unit (``count``, ``currency``...); ``count_of`` says what a count
    counts (``{count: clicks}``) and ``currency`` which currency money is in. ``range`` is the
    inclusive valid interval (None for no bound). ``additivity`` is ``additive`` (sums),
    ``non_additive`` (distinct counts: recomputed, never summed) or ``semi_additive``
    (snapshots: ``time_agg`` over time, summed across dimensions). ``agg``/``field_name``/``where``
    define the input as a measure over raw rows, so sources bind fields instead of restating
    it; ``aliases`` are deprecated former names a project may still provide it under.
    """

    name: str
    description: str = ""
    unit: str | None = None
    descriptions: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    count_of: str | None = None
    currency: str | None = None
    range: tuple[float | None, float | None] | None = None
    additivity: str = "additive"
    time_agg: str | None = None
    agg: str | None = None
    field_name: str | None = None
    where: str | None = None
    aliases: tuple[str, ...] = ()

    def text(self, lang: str = "en") -> str:
        return self.descriptions.get(lang) or self.description

    def to_dict(self) -> dict[str, Any]:
        """``description`` and ``unit`` always; the other settings only where they are set."""
        data: dict[str, Any] = {"description": self.description, "unit": self.unit}
        for key, value, unset in (
                ("descriptions", dict(self.descriptions), {}), ("count_of", self.count_of, None),
                ("currency", self.currency, None),
                ("range", list(self.range) if self.range else None, None),
                ("additivity", self.additivity, "additive"), ("time_agg", self.time_agg, None),
                ("agg", self.agg, None), ("field", self.field_name, None),
                ("where", self.where, None), ("aliases", list(self.aliases), [])):
            if value != unset:
                data[key] = value
        return data


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A raw-row field a definition's measures use; a project source binds it to a column."""

    name: str
    description: str = ""
    descriptions: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    unit: str | None = None
    count_of: str | None = None
    currency: str | None = None
    range: tuple[float | None, float | None] | None = None

    def text(self, lang: str = "en") -> str:
        return self.descriptions.get(lang) or self.description


@dataclass(frozen=True, slots=True)
class Parameter:
    """A named number of a definition (CSAT's ``scale``), which a project may set."""

    name: str
    default: float
    allowed: tuple[float, ...] = ()
    description: str = ""
    descriptions: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Definition:
    """One KPI as written in YAML, after validation. ``path``/``line`` say where it was defined."""

    id: str
    name: str
    formula: str
    unit: Unit
    direction: Direction
    inputs: Mapping[str, InputSpec] = field(default_factory=lambda: _EMPTY)
    thresholds: Thresholds = Thresholds()
    target: float | None = None
    tolerance: float | None = None
    currency: str | None = None
    category: str = ""
    description: str = ""
    descriptions: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    objectives: tuple[str, ...] = ()
    owner: str = ""
    tags: tuple[str, ...] = ()
    version: int = 1
    status: str = "draft"
    replaced_by: str | None = None  # a deprecated KPI's successor
    vanity: bool = False
    alerts: Mapping[str, Any] | None = None
    depends_on: tuple[str, ...] = ()
    fields: Mapping[str, FieldSpec] = field(default_factory=lambda: _EMPTY)
    parameters: Mapping[str, Parameter] = field(default_factory=lambda: _EMPTY)
    path: str = ""
    line: int = 0

    def label(self, lang: str = "en") -> str:
        return self.labels.get(lang) or self.labels.get("en") or self.name

    def text(self, lang: str = "en") -> str:
        return self.descriptions.get(lang) or self.description

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "labels": dict(self.labels),
            "description": self.description,
            "descriptions": dict(self.descriptions),
            "category": self.category,
            "objectives": list(self.objectives),
            "owner": self.owner,
            "tags": list(self.tags),
            "version": self.version,
            "status": self.status,
            "replaced_by": self.replaced_by,
            "vanity": self.vanity,
            "formula": self.formula,
            "inputs": {n: s.to_dict() for n, s in self.inputs.items()},
            "depends_on": list(self.depends_on),
            "unit": str(self.unit),
            "currency": self.currency,
            "direction": str(self.direction),
            "thresholds": self.thresholds.to_dict(),
            "path": self.path,
        }
        if self.fields:
            data["fields"] = {n: {k: v for k, v in (
                ("description", f.description), ("descriptions", dict(f.descriptions)),
                ("unit", f.unit), ("range", list(f.range) if f.range else None)) if v}
                for n, f in self.fields.items()}
        if self.parameters:
            data["parameters"] = {n: {"default": p.default, "allowed": list(p.allowed),
                                      "description": p.description}
                                  for n, p in self.parameters.items()}
        if self.direction is Direction.TARGET:
            data["target"] = self.target
            data["tolerance"] = self.tolerance
        if self.thresholds.sources:
            data["thresholds"]["source"] = [s.to_dict() for s in self.thresholds.sources]
        if self.thresholds.converted_from is not None:
            data["converted"] = {"from": self.thresholds.converted_from,
                                 "rate": self.thresholds.fx_rate}
        return data


@dataclass(frozen=True, slots=True)
class ObjectiveTarget:
    """A SMART objective's target: reach ``value`` of ``kpi`` by ``deadline``, starting from
    ``baseline`` on ``start`` (both optional)."""

    kpi: str
    value: float
    deadline: str | None = None
    baseline: float | None = None
    start: str | None = None
    owner: str = ""


@dataclass(frozen=True, slots=True)
class Objective:
    """A business objective KPIs serve, with its labels and descriptions by language."""

    id: str
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    descriptions: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    kpis: tuple[str, ...] = ()
    path: str = ""
    line: int = 0
    owner: str = ""
    target: ObjectiveTarget | None = None

    def label(self, lang: str = "en") -> str:
        return self.labels.get(lang) or self.labels.get("en") or self.id
