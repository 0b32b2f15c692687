"""Direction + thresholds -> :class:`Status`, for one value or a whole array of slices."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._model import Direction, Status, Thresholds

_STATUS_ARRAY = np.array([s for s in Status], dtype=object)
_INDEX = {s: i for i, s in enumerate(Status)}
# 550 / 1000 * 100 is 55.00000000000001 in binary floating point: a value that close to a
# threshold is taken as equal to it, so a formula's rounding never flips a status.
_REL_EPSILON = 1e-9


def _snap(value: float, thresholds: Thresholds) -> float:
    for bound in (thresholds.good, thresholds.warning, thresholds.critical):
        if bound is not None and abs(value - bound) <= _REL_EPSILON * max(1.0, abs(bound)):
            return bound
    return value


def _snap_array(values: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    snapped = values
    for bound in (thresholds.good, thresholds.warning, thresholds.critical):
        if bound is not None:
            close = np.abs(values - bound) <= _REL_EPSILON * max(1.0, abs(bound))
            if close.any():
                snapped = np.where(close, bound, snapped)
    return snapped


def classify(value: float | None, direction: Direction, thresholds: Thresholds,
             target: float | None = None, tolerance: float | None = None) -> Status:
    """Status of one value. A null (or non-finite) value is ``unknown``; no threshold is ``ok``."""
    if value is None or not math.isfinite(value):
        return Status.UNKNOWN
    good, warning, critical = thresholds.good, thresholds.warning, thresholds.critical
    if direction is not Direction.TARGET:
        value = _snap(value, thresholds)
    if direction is Direction.HIGHER_IS_BETTER:
        if critical is not None and value < critical:
            return Status.CRITICAL
        if warning is not None and value < warning:
            return Status.WARNING
        if good is not None and value >= good:
            return Status.GOOD
        return Status.OK
    if direction is Direction.LOWER_IS_BETTER:
        if critical is not None and value > critical:
            return Status.CRITICAL
        if warning is not None and value > warning:
            return Status.WARNING
        if good is not None and value <= good:
            return Status.GOOD
        return Status.OK
    # target: thresholds are distances from the target
    distance = _snap(abs(value - (target or 0.0)), thresholds)
    if critical is not None and distance > critical:
        return Status.CRITICAL
    if warning is not None and distance > warning:
        return Status.WARNING
    if distance <= (tolerance if tolerance is not None else (good or 0.0)):
        return Status.GOOD
    return Status.OK


def classify_array(values: np.ndarray, direction: Direction, thresholds: Thresholds,
                   target: float | None = None, tolerance: float | None = None) -> np.ndarray:
    """Vectorised :func:`classify`: same rules, one pass per rule over all slices."""
    values = np.asarray(values, dtype=np.float64)
    good, warning, critical = thresholds.good, thresholds.warning, thresholds.critical
    codes = np.full(values.shape, _INDEX[Status.OK], dtype=np.int8)
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        if direction is not Direction.TARGET:
            values = _snap_array(values, thresholds)
        if direction is Direction.TARGET:
            x = _snap_array(np.abs(values - (target or 0.0)), thresholds)
            tol = tolerance if tolerance is not None else (good or 0.0)
            rules: list[tuple[Any, Status]] = [(x <= tol, Status.GOOD)]
            if warning is not None:
                rules.append((x > warning, Status.WARNING))
            if critical is not None:
                rules.append((x > critical, Status.CRITICAL))
        elif direction is Direction.HIGHER_IS_BETTER:
            rules = []
            if good is not None:
                rules.append((values >= good, Status.GOOD))
            if warning is not None:
                rules.append((values < warning, Status.WARNING))
            if critical is not None:
                rules.append((values < critical, Status.CRITICAL))
        else:
            rules = []
            if good is not None:
                rules.append((values <= good, Status.GOOD))
            if warning is not None:
                rules.append((values > warning, Status.WARNING))
            if critical is not None:
                rules.append((values > critical, Status.CRITICAL))
    # later rules are more severe and win, exactly as the early returns of classify()
    for mask, status in rules:
        codes[mask] = _INDEX[status]
    codes[~finite] = _INDEX[Status.UNKNOWN]
    return _STATUS_ARRAY[codes]


def threshold_order_problem(direction: Direction, thresholds: Thresholds) -> str | None:
    """Why the thresholds contradict the direction, or None when they are consistent."""
    named = [(n, v) for n, v in (("critical", thresholds.critical), ("warning", thresholds.warning),
                                 ("good", thresholds.good)) if v is not None]
    if direction is Direction.TARGET:
        for name, v in named:
            if v < 0:
                return f"{name} is a distance from the target and cannot be negative ({v:g})"
        if thresholds.warning is not None and thresholds.critical is not None \
                and thresholds.warning > thresholds.critical:
            return (f"warning ({thresholds.warning:g}) must not be farther from the target than "
                    f"critical ({thresholds.critical:g})")
        return None
    higher = direction is Direction.HIGHER_IS_BETTER
    for (n1, v1), (n2, v2) in zip(named, named[1:]):
        if (v1 > v2) if higher else (v1 < v2):
            relation = "<=" if higher else ">="
            return (f"for {direction.value}, {n1} ({v1:g}) must be {relation} {n2} ({v2:g})")
    return None
