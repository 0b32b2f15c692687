"""The :class:`Engine`: a loaded, immutable definition set that evaluates KPIs."""

from __future__ import annotations

import math
import os
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence, cast

import numpy as np

from ._aliases import input_aliases, with_aliases
from ._definitions import Catalog, load_catalog
from ._formulas import Formula, function_specs
from ._guards import all_finite
from ._model import Definition, Objective, Status
from ._results import Result, Results, SliceCodes
from ._plugins import Plugins, load_plugins
from ._reasons import Reason, depends_on, input_not_finite, missing_input
from ._inputs import input_array, input_number
from ._ranges import Range, apply_ranges, input_ranges, name_out_of_range, name_out_of_range_codes
from ._status import classify, classify_codes
from ._totals import total_key
from .errors import Diagnostic, InputError, UnknownKpiError, did_you_mean



def _normalise_inputs(inputs: Mapping[str, Any]
                      ) -> tuple[dict[str, Any], int | None, dict[str, Any]]:
    """Inputs as Python floats (None = missing) or float64 arrays of one common length.

    An input must be a number or missing: text, complex numbers, dates and integers beyond
    float range are an :class:`InputError` naming the input. Infinities are data, not a
    caller's mistake: they are evaluated as NaN and returned in the third mapping (name ->
    True or a mask of the infinite slices), so that the reason can say so.
    """
    values: dict[str, Any] = {}
    size: int | None = None
    infinite: dict[str, Any] = {}
    for name, value in inputs.items():
        if value is None:
            values[name] = None
            continue
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        if isinstance(value, str):
            raise InputError(f"input '{name}': expected a number, got text {value[:40]!r}")
        if not isinstance(value, (list, tuple, np.ndarray)):
            number = input_number(name, value)
            if math.isinf(number):
                infinite[name] = True
                number = math.nan
                values[name] = number
                continue
            values[name] = None if math.isnan(number) else number
            continue
        if isinstance(value, np.ndarray):
            array = value
        else:
            try:
                array = np.asarray(value)
            except (TypeError, ValueError) as exc:
                raise InputError(f"input '{name}': expected a number or a flat list of numbers "
                                 f"({exc})") from None
        if array.ndim != 1:
            raise InputError(f"input '{name}': expected a flat list of numbers, got shape {array.shape}")
        if array.dtype.kind in "US":
            raise InputError(f"input '{name}': expected a number or a list of numbers, "
                             f"got text {str(array[0])[:40]!r}" if len(array) else
                             f"input '{name}': expected a number or a list of numbers, got text")
        array = input_array(name, array)
        if not all_finite(array):  # NaN, an infinity or a huge sum: look for infinities
            inf = np.isinf(array)
            if inf.any():
                infinite[name] = inf
                array = np.where(inf, np.nan, array)
        if size is not None and len(array) != size:
            raise InputError(f"input '{name}' has {len(array)} values but other inputs have {size}")
        size = len(array)
        values[name] = array
    return values, size, infinite


class Engine:
    """A loaded definition set. Immutable after :meth:`load` and safe to share between threads."""

    __slots__ = ("_aliases", "_catalog", "_plugins", "_plans", "_ranges")
    _aliases: tuple[Mapping[str, tuple[str, ...]], frozenset[str]]  # former names, declared names
    _catalog: Catalog
    _plugins: Plugins
    _ranges: Mapping[str, Range]  # the valid range of each input declaring one
    # per KPI: (definition, formula, declared input names used, KPIs it depends on)
    _plans: Mapping[str, tuple[Definition, Formula, tuple[str, ...], tuple[str, ...]]]

    def __init__(self, catalog: Catalog, plugins: Plugins):
        object.__setattr__(self, "_catalog", catalog)
        object.__setattr__(self, "_plugins", plugins)
        # precomputed once, so that each evaluation only looks plans up
        object.__setattr__(self, "_plans", MappingProxyType({
            kpi_id: (catalog.definitions[kpi_id], catalog.formulas[kpi_id],
                     tuple(sorted(catalog.formulas[kpi_id].names & _readable(catalog.definitions[kpi_id]))),
                     catalog.definitions[kpi_id].depends_on)
            for kpi_id in catalog.order
        }))
        object.__setattr__(self, "_ranges", MappingProxyType(input_ranges(catalog.definitions)))
        declared = frozenset(n for d in catalog.definitions.values() for n in d.inputs)
        object.__setattr__(self, "_aliases", (input_aliases(catalog.definitions.values()), declared))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Engine is immutable; cannot set {name!r}")

    @classmethod
    def load(cls, *paths: str | os.PathLike[str], plugins: Plugins | None = None,
             currency: str = "EUR") -> "Engine":
        """Load definitions from files, folders or packs (``acme:sales``); with no path, the
        bundled standard catalog (the pack ``kpiforge:standard``).

        Raises :class:`kpiforge.DefinitionError` listing every error of every file. Without
        ``plugins``, the built-ins and installed entry points are loaded for this engine.
        """
        plugins = plugins if plugins is not None else load_plugins()
        catalog = load_catalog(paths or None, functions=function_specs(plugins.functions),
                               default_currency=currency, packs=plugins.definition_packs())
        return cls(catalog, plugins)

    # -- what was loaded -------------------------------------------------------------------
    @property
    def definitions(self) -> Mapping[str, Definition]:
        return self._catalog.definitions

    @property
    def objectives(self) -> Mapping[str, Objective]:
        return self._catalog.objectives

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return self._catalog.warnings

    @property
    def plugins(self) -> Plugins:
        return self._plugins

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def __getitem__(self, kpi_id: str) -> Definition:
        return self._definition(kpi_id)

    def _definition(self, kpi_id: str) -> Definition:
        try:
            return self._catalog.definitions[kpi_id]
        except KeyError:
            raise UnknownKpiError(
                f"unknown KPI '{kpi_id}'{did_you_mean(kpi_id, self._catalog.definitions)}") from None

    def required_inputs(self, kpi_id: str) -> frozenset[str]:
        """Every raw input a KPI needs, through all its dependencies."""
        needed: set[str] = set()
        for kpi in self.plan([kpi_id]):
            needed.update(self._plans[kpi][2])
        return frozenset(needed)

    def plan(self, kpis: Iterable[str]) -> list[str]:
        """The KPIs to evaluate for ``kpis``, dependencies included, in dependency order."""
        wanted: set[str] = set()
        stack = [k for k in kpis]
        while stack:
            kpi = stack.pop()
            if kpi in wanted:
                continue
            self._definition(kpi)
            wanted.add(kpi)
            stack.extend(self._plans[kpi][3])
        return [k for k in self._catalog.order if k in wanted]

    def computable(self, available: Iterable[str]) -> list[str]:
        """KPIs whose raw inputs, through every dependency, are all in ``available``."""
        have = set(available)
        ok: set[str] = set()
        for kpi in self._catalog.order:
            _, _, used, deps = self._plans[kpi]
            if all(n in have for n in used) and all(d in ok for d in deps):
                ok.add(kpi)
        return [k for k in self._catalog.order if k in ok]

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, inputs: Mapping[str, Any], kpis: Sequence[str] | None = None) -> Results:
        """Evaluate KPIs on scalar inputs or on equal-length arrays (one entry per slice).

        With ``kpis`` given, those and what they depend on; otherwise every KPI whose inputs
        are all given. A value that cannot be computed is null with a reason, never a number.
        """
        if self._aliases[0]:
            inputs = with_aliases(inputs, *self._aliases)
        # one errstate for the inputs' checks and every formula: entering it costs as much as
        # a small formula (the scalar path computes with Python floats: no effect there)
        with np.errstate(all="ignore"):
            return self._evaluate(inputs, kpis)

    def _evaluate(self, inputs: Mapping[str, Any], kpis: Sequence[str] | None) -> Results:
        values, size, infinite = _normalise_inputs(inputs)
        outside = apply_ranges(values, self._ranges) if self._ranges else {}
        if kpis is None:
            order = self.computable(n for n, v in values.items() if v is not None)
        else:
            order = self.plan(kpis)
        if size is not None:
            return self._evaluate_arrays(values, size, infinite, order, outside)
        results: dict[str, Result] = {}
        computed: dict[str, Any] = {}
        reasons: dict[str, Any] = {}
        for kpi in order:
            definition, formula, used, deps = self._plans[kpi]
            namespace = {name: values.get(name) for name in used}
            for dep in deps:
                namespace[dep] = computed[dep]
            evaluation = formula.evaluate(namespace)
            value = cast("float | None", evaluation.value)
            reason = cast("str | None", evaluation.reason)
            if infinite and reason is not None:
                reason = _name_infinities(reason, used, infinite)
            if outside and reason is not None:
                reason = name_out_of_range(reason, used, outside)
            null_dep = _missing_dependency(reason, deps)
            if null_dep is not None:
                reason = depends_on(null_dep, reasons[null_dep])
            status = classify(value, definition.direction, definition.thresholds,
                              definition.target, definition.tolerance)
            computed[kpi] = value
            reasons[kpi] = reason
            results[kpi] = Result(kpi, value, definition.unit.value, status, reason)
        return Results(results)

    def _evaluate_arrays(self, values: Mapping[str, Any], size: int,
                         infinite: Mapping[str, Any], order: list[str],
                         outside: Mapping[str, Any]) -> Results:
        """Array inputs: statuses and reasons stay integer codes (:class:`SliceCodes`); the
        object arrays of :attr:`Result.status` and :attr:`Result.reason` are built if read."""
        results: dict[str, Result] = {}
        computed: dict[str, np.ndarray] = {}
        reasons: dict[str, tuple[np.ndarray | None, list[Any]]] = {}
        for kpi in order:
            definition, formula, used, deps = self._plans[kpi]
            namespace = {name: values.get(name) for name in used}
            for dep in deps:
                namespace[dep] = computed[dep]
            value, codes, table = formula._array_codes(namespace, size, guarded=False)
            if codes is not None:
                if infinite:
                    codes, table = _name_infinity_codes(codes, table, used, infinite)
                if outside:
                    codes, table = name_out_of_range_codes(codes, table, used, outside, self._ranges)
                if deps:
                    codes, table = _dependency_codes(codes, table, deps, reasons)
            status = classify_codes(value, definition.direction, definition.thresholds,
                                    definition.target, definition.tolerance,
                                    all_finite=codes is None)
            computed[kpi] = value
            reasons[kpi] = (codes, table)
            results[kpi] = Result(kpi, value, definition.unit.value,
                                  codes=SliceCodes(status, codes, tuple(table)))
        return Results(results)


def _readable(definition: Definition) -> set[str]:
    """The names a KPI's formula may read from the inputs: its inputs and their totals."""
    return {*definition.inputs, *(total_key(name) for name in definition.inputs)}


def _name_infinity_codes(codes: np.ndarray, table: list[Any], used: tuple[str, ...],
                         infinite: Mapping[str, Any]) -> tuple[np.ndarray, list[Any]]:
    """'missing input: x' becomes 'input is not finite: x' where x was an infinity."""
    for name in used:
        mask = infinite.get(name)
        if mask is None:
            continue
        missing = missing_input(name)
        hits = [i for i, reason in enumerate(table) if reason is not None and reason == missing]
        if not hits:
            continue
        hit = np.isin(codes, hits) & mask
        if hit.any():
            codes = codes.copy()
            codes[hit] = len(table)
            table = [*table, input_not_finite(name)]
    return codes, table


def _dependency_codes(codes: np.ndarray, table: list[Any], deps: tuple[str, ...],
                      upstream: Mapping[str, tuple[np.ndarray | None, list[Any]]]
                      ) -> tuple[np.ndarray, list[Any]]:
    """Where a KPI is null because a KPI it uses is null, the reason says so, naming the
    upstream reason of that slice: one new code per (dependency, upstream code) met, so that
    memory grows with KPIs x slices, never with the chain's depth."""
    for code, reason in enumerate(table):
        dep = _missing_dependency(reason, deps)
        if dep is None:
            continue
        hit = np.flatnonzero(codes == code)
        if not len(hit):
            continue
        up_codes, up_table = upstream[dep]
        here = np.zeros(len(hit), dtype=np.int32) if up_codes is None else up_codes[hit]
        seen, inverse = np.unique(here, return_inverse=True)
        codes = codes.copy()
        start = len(table)
        table = [*table, *(depends_on(dep, up_table[u]) for u in seen.tolist())]
        codes[hit] = start + inverse.astype(np.int32)
    return codes, table


def _name_infinities(reason: Any, used: tuple[str, ...], infinite: Mapping[str, Any]) -> Any:
    """'missing input: x' becomes 'input is not finite: x' where x was an infinity."""
    if not isinstance(reason, np.ndarray):
        for name in used:
            if name in infinite and reason == missing_input(name):
                return input_not_finite(name)
        return reason
    for name in used:
        mask = infinite.get(name)
        if mask is None:
            continue
        hit = (reason == missing_input(name)) & mask
        if hit.any():
            reason = reason.copy() if not reason.flags.writeable else reason
            reason[hit] = input_not_finite(name)
    return reason


def _missing_dependency(reason: Any, deps: tuple[str, ...]) -> str | None:
    """The KPI among ``deps`` whose null value ``reason`` reports as a missing input: a KPI a
    formula uses is one of its names, so the formula sees it as a missing input."""
    if isinstance(reason, Reason) and reason.code == "missing_input" and reason.subject in deps:
        return reason.subject
    return None


__all__ = ["Engine", "Status"]
