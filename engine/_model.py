"""The plain data of kpiforge: definitions in, results out. Frozen dataclasses throughout."""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ._reasons import reason_objects
from ._thresholds import ThresholdSource, Thresholds

if TYPE_CHECKING:  # numpy is imported when a result is built from arrays: loading a
    import numpy as np  # catalog (kpiforge validate) needs these classes, not numpy

__all__ = [
    "AlertState",
    "Definition",
    "Direction",
    "FieldSpec",
    "InputSpec",
    "Objective",
    "ObjectiveTarget",
    "Parameter",
    "Result",
    "Results",
    "SliceCodes",
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


def _plain(value: Any) -> Any:
    """numpy scalars become Python numbers and NaN becomes None, so JSON output holds plain data."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _reason_fields(reason: Any) -> dict[str, Any]:
    """``reason`` as plain text (JSON, YAML) and its code."""
    if reason is None:
        return {"reason": None, "reason_code": None}
    return {"reason": str(reason), "reason_code": getattr(reason, "code", None)}


@dataclass(frozen=True, slots=True)
class SliceCodes:
    """The status and reason of every slice as small integer codes, as the engine computes
    them: ``status`` is a uint8 array of indexes into :class:`Status` (in its order),
    ``reason`` an int32 array of indexes into ``table`` (``table[0]`` is None, not null), or
    None when no slice is null. Object arrays are built from them only when asked for."""

    status: np.ndarray
    reason: np.ndarray | None
    table: tuple[Any, ...] = (None,)


@functools.cache
def _status_by_code() -> np.ndarray:  # see _status.STATUSES
    import numpy as np
    return np.array(list(Status), dtype=object)


_STATUS_TEXT = [str(s) for s in Status]


@dataclass(frozen=True, slots=True, init=False)
class Result:
    """The value of one KPI.

    On scalar inputs ``value`` is a float or None, ``status`` a :class:`Status` and ``reason``
    a string or None. On array inputs (one entry per slice) ``value`` is a float64 array with NaN
    where null, and ``status``/``reason`` are object arrays of the same length, built from the
    engine's integer codes the first time they are read.
    """

    kpi: str
    value: Any
    unit: str
    _status: Any
    _reason: Any
    _codes: SliceCodes | None

    def __init__(self, kpi: str, value: Any, unit: str, status: Any = None, reason: Any = None,
                 *, codes: SliceCodes | None = None):
        for name, item in (("kpi", kpi), ("value", value), ("unit", unit), ("_status", status),
                           ("_reason", reason), ("_codes", codes)):
            object.__setattr__(self, name, item)

    @property
    def status(self) -> Any:
        if self._status is None and self._codes is not None:
            object.__setattr__(self, "_status", _status_by_code()[self._codes.status])
        return self._status

    @property
    def reason(self) -> Any:
        codes = self._codes
        if self._reason is None and codes is not None:
            if codes.reason is None:
                import numpy as np

                reason = np.empty(len(codes.status), dtype=object)
            else:
                reason = reason_objects(codes.table)[codes.reason]
            object.__setattr__(self, "_reason", reason)
        return self._reason

    @property
    def codes(self) -> SliceCodes | None:
        """The integer codes behind ``status`` and ``reason`` of an array result from
        ``Engine.evaluate`` (cheaper to work with than the object arrays); None otherwise."""
        return self._codes

    @property
    def is_array(self) -> bool:
        numpy = sys.modules.get("numpy")  # no array exists before numpy is imported
        return numpy is not None and isinstance(self.value, numpy.ndarray)

    def __len__(self) -> int:
        return len(self.value) if self.is_array else 1

    def __repr__(self) -> str:
        return (f"Result(kpi={self.kpi!r}, value={self.value!r}, unit={self.unit!r}, "
                f"status={self.status!r}, reason={self.reason!r})")

    def records(self) -> list[dict[str, Any]]:
        if not self.is_array:
            return [{"kpi": self.kpi, "value": _plain(self.value), "unit": self.unit,
                     "status": str(self.status), **_reason_fields(self.reason)}]
        if (codes := self._codes) is None:
            rows = zip(self.value.tolist(), self.status, self.reason)
            return [{"kpi": self.kpi, "index": i, "value": _plain(v), "unit": self.unit,
                     "status": str(s), **_reason_fields(r)} for i, (v, s, r) in enumerate(rows)]
        # from the codes: each code's texts made once, no object arrays (same records as above)
        fields = [_reason_fields(r) for r in codes.table]
        why = codes.reason.tolist() if codes.reason is not None else [0] * len(codes.status)
        import numpy as np
        values = np.asarray(self.value, dtype=np.float64).tolist()  # v - v: NaN for NaN, inf
        return [{"kpi": self.kpi, "index": i, "value": v if v - v == 0.0 else None,
                 "unit": self.unit, "status": _STATUS_TEXT[s], **fields[r]}
                for i, (v, s, r) in enumerate(zip(values, codes.status.tolist(), why))]


@dataclass(frozen=True)
class Results(Mapping[str, Result]):
    """Results by KPI id, in evaluation (dependency) order."""

    by_kpi: Mapping[str, Result] = field(default_factory=dict)

    def __getitem__(self, kpi: str) -> Result:
        return self.by_kpi[kpi]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_kpi)

    def __len__(self) -> int:
        return len(self.by_kpi)

    def to_records(self) -> list[dict[str, Any]]:
        """Plain dicts (JSON-ready): one per KPI, or one per KPI and slice for array inputs."""
        records: list[dict[str, Any]] = []
        for result in self.by_kpi.values():
            records.extend(result.records())
        return records
