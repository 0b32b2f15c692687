"""Valid ranges of inputs: a value outside its input's ``range`` is not trusted.

``gross_margin: {unit: ratio, range: [0, 1]}`` given 50 is almost certainly the guide's "50 %"
typed as a ratio; computing LTV with it gives a confident 50,000 "good". Such a value is
masked (every KPI using the input is null) with an ``out_of_range`` reason that names the value,
the range and the likely mistake. Scalar and array evaluation mask the same values and give the
same texts (one reason per distinct bad value, so the code table stays small).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from ._model import Definition, Unit
from ._reasons import Reason, missing_input
from ._totals import total_key

__all__ = ["Range", "apply_ranges", "input_ranges", "name_out_of_range", "name_out_of_range_codes",
           "out_of_range"]

# (low, high, unit of the input); None is an open end
Range = tuple["float | None", "float | None", "Unit | None"]


def input_ranges(definitions: Mapping[str, Definition]) -> dict[str, Range]:
    """The range of each input name over every definition declaring one. Two definitions
    declaring the same input with different ranges: the intersection, since a value outside
    either is wrong for the KPI that declared it and an input has one value for all KPIs."""
    out: dict[str, Range] = {}
    for definition in definitions.values():
        for name, spec in definition.inputs.items():
            if spec.range is None:
                continue
            low, high = spec.range
            if name in out:
                old_low, old_high, unit = out[name]
                low = old_low if low is None else low if old_low is None else max(low, old_low)
                high = old_high if high is None else high if old_high is None else min(high, old_high)
                out[name] = (low, high, unit)
            else:
                out[name] = (low, high, _unit(spec.unit))
    # total(x) is x over a coarser breakdown: a negative total of counts is as wrong as x's
    out.update({total_key(name): bounds for name, bounds in out.items()})
    return out


def _unit(unit: Any) -> Unit | None:
    try:
        return Unit(unit)
    except ValueError:
        return None


def _number(value: float | None) -> str:
    if value is None:
        return "none"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def out_of_range(name: str, value: float, rng: Range) -> Reason:
    """The reason for ``value`` outside ``rng``, suggesting the likely mistake."""
    low, high, unit = rng
    text = f"{name} = {_number(value)} is outside [{_number(low)}, {_number(high)}]"
    if low == 0 and high == 1 and 1 < value <= 100:
        text += ": a percent given as a ratio?"
    elif low == 0 and value < 0 and unit is Unit.COUNT:
        text += ": a negative count?"
    elif low == 0 and value < 0 and unit is Unit.CURRENCY:
        text += ": a negative amount?"
    return Reason("out_of_range", text, name)


def _outside(array: np.ndarray, low: float | None, high: float | None) -> np.ndarray | None:
    """The mask of the values outside [low, high], or None when there is none: the common
    case, told by the smallest and largest value (NaN ignored), one pass per bound that
    allocates nothing, where building the mask takes three. Comparisons with NaN are false."""
    if not array.size or ((low is None or not np.fmin.reduce(array) < low)
                          and (high is None or not np.fmax.reduce(array) > high)):
        return None
    mask = np.zeros(array.shape, dtype=bool)
    if low is not None:
        mask |= array < low
    if high is not None:
        mask |= array > high
    return mask


def apply_ranges(values: dict[str, Any], ranges: Mapping[str, Range]) -> dict[str, Any]:
    """Mask (to NaN, in ``values``) every value outside its input's range. Returns, per masked
    input, its Reason (scalar) or (mask, original array) for the array path."""
    outside: dict[str, Any] = {}
    for name, rng in ranges.items():
        value = values.get(name)
        if value is None:
            continue
        low, high, _ = rng
        if isinstance(value, np.ndarray):
            mask = _outside(value, low, high)
            if mask is not None:
                outside[name] = (mask, value)
                values[name] = np.where(mask, np.nan, value)
        elif not math.isnan(value) and ((low is not None and value < low)
                                        or (high is not None and value > high)):
            outside[name] = out_of_range(name, value, rng)
            values[name] = math.nan  # evaluated as missing, then named (not None: still given)
    return outside


def name_out_of_range(reason: Any, used: tuple[str, ...], outside: Mapping[str, Any]) -> Any:
    """'missing input: x' becomes x's out-of-range reason where x was masked (scalar path)."""
    for name in used:
        if name in outside and reason == missing_input(name):
            return outside[name]
    return reason


def name_out_of_range_codes(codes: np.ndarray, table: list[Any], used: tuple[str, ...],
                            outside: Mapping[str, Any], ranges: Mapping[str, Range]
                            ) -> tuple[np.ndarray, list[Any]]:
    """The array path of :func:`name_out_of_range`: one new code per distinct bad value."""
    for name in used:
        masked = outside.get(name)
        if masked is None:
            continue
        mask, original = masked
        missing = missing_input(name)
        hits = [i for i, reason in enumerate(table) if reason is not None and reason == missing]
        if not hits:
            continue
        hit = np.isin(codes, hits) & mask
        if not hit.any():
            continue
        bad, inverse = np.unique(original[hit], return_inverse=True)
        codes = codes.copy()
        start = len(table)
        table = [*table, *(out_of_range(name, float(v), ranges[name]) for v in bad.tolist())]
        codes[hit] = start + inverse.reshape(-1).astype(codes.dtype)
    return codes, table
