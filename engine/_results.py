"""What evaluation returns: :class:`Result` per KPI and :class:`Results` by KPI, with the
integer codes the engine computes (:class:`SliceCodes`). Apart from :mod:`._model` so that
loading a catalog (``kpiforge validate``) does not create these classes."""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ._model import Status
from ._reasons import reason_objects

if TYPE_CHECKING:  # numpy is imported when a result is built from arrays
    import numpy as np

__all__ = ["Result", "Results", "SliceCodes"]


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
