"""What a run returns: :class:`Record` per KPI, period and slice, gathered in a :class:`RunResult`.

A record is a frozen dataclass; :meth:`RunResult.to_records` gives the JSON-ready dicts that
``kpiforge run --format json`` prints, and ``to_pandas`` / ``to_polars`` / ``to_arrow`` give one
table with a column per slice dimension. The dataframe libraries are imported only when one of
those is called, so a plain install never needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from ._model import Status
from ._reasons import Reason
from .errors import MissingExtraError

if TYPE_CHECKING:  # a run without objectives does not import their module
    from ._objectives_progress import ObjectiveProgress

__all__ = ["RECORD_FIELDS", "Record", "RunResult"]

# the columns of every record, in output order (the year comparison only when both are asked)
RECORD_FIELDS = ("kpi", "period", "slice", "value", "unit", "currency", "status", "reason",
                 "reason_code", "previous", "change_pct")
_YEAR_FIELDS = ("previous_year", "change_pct_year")
# the expected range, when a KPI of the run has an anomaly rule (docs: _baselines.py)
_EXPECTED_FIELDS = ("expected", "expected_low", "expected_high", "expected_reason")
_NUMERIC = ("value", "previous", "change_pct", *_YEAR_FIELDS, "expected", "expected_low",
            "expected_high")


@dataclass(frozen=True, slots=True)
class Record:
    """One KPI value for one period and one slice.

    ``value`` is None when it cannot be computed, and then ``reason`` says why (``no data``,
    ``division by zero``, ...): a :class:`kpiforge.Reason`, text with a stable ``code`` (also
    ``reason_code``; tools match on the code, people read the text). ``currency`` is the ISO code for a ``currency`` KPI, else None.
    ``previous``/``change_pct`` hold the compared value and its change in percent: the previous
    period, or a year earlier when only ``compare="year"`` was asked; with both comparisons the
    year-earlier ones are ``previous_year``/``change_pct_year``. For a KPI with an anomaly rule
    (``alerts.anomaly``), ``expected`` is the median of the same season in the earlier periods
    and ``expected_low``/``expected_high`` the range the value is expected in; all three are
    None when they cannot be built, and ``expected_reason`` says why.
    """

    kpi: str
    period: str
    slice: Mapping[str, Any]
    value: float | None
    unit: str
    currency: str | None
    status: Status
    reason: str | None = None
    previous: float | None = None
    change_pct: float | None = None
    previous_year: float | None = None
    change_pct_year: float | None = None
    expected: float | None = None
    expected_low: float | None = None
    expected_high: float | None = None
    expected_reason: str | None = None

    @property
    def reason_code(self) -> str | None:
        """The reason's stable code (``no_data``, ``division_by_zero``, ...), None when the value
        is there; see :data:`kpiforge.REASON_CODES`."""
        return self.reason.code if isinstance(self.reason, Reason) else None

    def to_dict(self, *, year: bool = False, expected: bool = False) -> dict[str, Any]:
        """The JSON-ready dict; ``year`` adds ``previous_year``/``change_pct_year``, ``expected``
        the expected range (``expected``, ``expected_low``, ``expected_high``,
        ``expected_reason``)."""
        data = {
            "kpi": self.kpi,
            "period": self.period,
            "slice": dict(self.slice),
            "value": self.value,
            "unit": self.unit,
            "currency": self.currency,
            "status": str(self.status),
            "reason": None if self.reason is None else str(self.reason),
            "reason_code": self.reason_code,
            "previous": self.previous,
            "change_pct": self.change_pct,
        }
        if year:
            data["previous_year"] = self.previous_year
            data["change_pct_year"] = self.change_pct_year
        if expected:
            data.update(expected=self.expected, expected_low=self.expected_low,
                        expected_high=self.expected_high, expected_reason=self.expected_reason)
        return data


def make_records(columns: Sequence[Iterable[Any]]) -> Iterator[Record]:
    """Records from columns in field order (the first eight given, the rest optional),
    equal to ``map(Record, *columns)``, at about half the cost per record.

    The dataclass's ``__init__`` sets each field through ``object.__setattr__`` (the class is
    frozen), a looked-up call per field per record, and a run makes one record per KPI x
    period x slice: this sets the slots through their descriptors, bound once."""
    return map(_record, *columns)


def _slot_setters() -> tuple[Any, ...]:
    # in field order: a test checks that the slots are the fields and every default is None
    return tuple(getattr(Record, name).__set__ for name in Record.__slots__)


(_KPI, _PERIOD, _SLICE, _VALUE, _UNIT, _CURRENCY, _STATUS, _REASON, _PREVIOUS, _CHANGE,
 _PREVIOUS_YEAR, _CHANGE_YEAR, _EXPECTED, _EXPECTED_LOW, _EXPECTED_HIGH,
 _EXPECTED_REASON) = _slot_setters()


def _record(kpi: str, period: str, slice: Mapping[str, Any], value: float | None, unit: str,
            currency: str | None, status: Status, reason: str | None,
            previous: float | None = None, change_pct: float | None = None,
            previous_year: float | None = None, change_pct_year: float | None = None,
            expected: float | None = None, expected_low: float | None = None,
            expected_high: float | None = None, expected_reason: str | None = None) -> Record:
    record = object.__new__(Record)
    _KPI(record, kpi)
    _PERIOD(record, period)
    _SLICE(record, slice)
    _VALUE(record, value)
    _UNIT(record, unit)
    _CURRENCY(record, currency)
    _STATUS(record, status)
    _REASON(record, reason)
    _PREVIOUS(record, previous)
    _CHANGE(record, change_pct)
    _PREVIOUS_YEAR(record, previous_year)
    _CHANGE_YEAR(record, change_pct_year)
    _EXPECTED(record, expected)
    _EXPECTED_LOW(record, expected_low)
    _EXPECTED_HIGH(record, expected_high)
    _EXPECTED_REASON(record, expected_reason)
    return record


def frozen_slice(items: Iterable[tuple[str, Any]]) -> Mapping[str, Any]:
    """A read-only slice mapping; one per slice, shared by that slice's records."""
    return MappingProxyType(dict(items))


def _require(module: str, extra: str, method: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"RunResult.{method}() needs {module.split('.')[0]}, which is not "
                                f"installed: pip install 'kpiforge[{extra}]'") from None


@dataclass(frozen=True)
class RunResult:
    """What :meth:`kpiforge.Project.run` returns: the records plus what was computed.

    ``records`` are ordered by KPI, period, slice. ``warnings`` are data problems that did not
    stop the run, one text per source and problem (``source 'ads': 1 row of data/ads.csv has
    no date and was left out``). Iterating a RunResult yields the records.
    ``objective_progress`` measures each objective target whose KPI was computed, on the
    un-sliced value of the latest period (empty when the run is split with ``by``: a target
    is for the whole business, not for one slice). ``baselines`` lists the KPIs with an anomaly
    rule; with any, each record also has the expected-range fields.
    """

    records: tuple[Record, ...]
    grain: str
    periods: tuple[str, ...]
    by: tuple[str, ...] = ()
    kpis: tuple[str, ...] = ()
    compare: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    objective_progress: tuple[ObjectiveProgress, ...] = ()
    baselines: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def fields(self) -> tuple[str, ...]:
        """The keys of each of :meth:`to_records`, in order."""
        return (RECORD_FIELDS + (_YEAR_FIELDS if len(self.compare) == 2 else ())
                + (_EXPECTED_FIELDS if self.baselines else ()))

    def to_records(self) -> list[dict[str, Any]]:
        """Plain JSON-ready dicts (fresh copies, safe to modify): the ``results`` of
        ``kpiforge run --format json``."""
        year, expected = len(self.compare) == 2, bool(self.baselines)
        return [r.to_dict(year=year, expected=expected) for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        return {"results": self.to_records(), "warnings": list(self.warnings),
                "objectives": [p.to_dict() for p in self.objective_progress]}

    # -- tables ----------------------------------------------------------------------------
    def columns(self) -> list[str]:
        """The table columns: each slice dimension takes the place of ``slice``. A dimension
        named like a record field (a ``status`` dimension) becomes ``slice.status``."""
        out: list[str] = []
        for name in self.fields:
            if name == "slice":
                out.extend(self._dimension_columns())
            else:
                out.append(name)
        return out

    def _dimension_columns(self) -> list[str]:
        reserved = (*RECORD_FIELDS, *_YEAR_FIELDS, *_EXPECTED_FIELDS)
        return [f"slice.{d}" if d in reserved else d for d in self.by]

    def _table(self) -> dict[str, list[Any]]:
        """Column name -> values, one per record."""
        rows = self.to_records()
        table: dict[str, list[Any]] = {}
        for name in self.fields:
            if name == "slice":
                for dim, column in zip(self.by, self._dimension_columns()):
                    table[column] = [r["slice"].get(dim) for r in rows]
            else:
                table[name] = [r[name] for r in rows]
        return table

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame``, one row per record (needs ``kpiforge[dataframe]``)."""
        pd = _require("pandas", "dataframe", "to_pandas")
        table = self._table()
        frame = pd.DataFrame(table, columns=list(table))
        for name in _NUMERIC:
            if name in frame:  # None -> NaN, so an all-null column is still numeric
                frame[name] = frame[name].astype("float64")
        return frame

    def to_polars(self) -> Any:
        """A ``polars.DataFrame``, one row per record (needs ``kpiforge[polars]``)."""
        pl = _require("polars", "polars", "to_polars")
        table = self._table()
        numeric = set(_NUMERIC)
        return pl.DataFrame({name: pl.Series(name, values, dtype=pl.Float64 if name in numeric
                                             else None, strict=False)
                             for name, values in table.items()})

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table``, one row per record (needs ``kpiforge[dataframe]``)."""
        pa = _require("pyarrow", "dataframe", "to_arrow")
        table = self._table()
        numeric = set(_NUMERIC)
        return pa.table({name: pa.array(values, type=pa.float64() if name in numeric else None)
                         for name, values in table.items()})
