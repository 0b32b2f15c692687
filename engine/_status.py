"""Direction + thresholds -> :class:`Status`, for one value or a whole array of slices."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._model import Direction, Status, Thresholds
from ._threshold_order import threshold_order_problem  # noqa: F401 - its home before

#: Status by code: ``STATUSES[code]`` for the uint8 codes of :func:`classify_codes`.
STATUSES = np.array([s for s in Status], dtype=object)
_INDEX = {s: i for i, s in enumerate(Status)}
# 550 / 1000 * 100 is 55.00000000000001 in binary floating point: a value that close to a
# threshold is taken as equal to it, so a formula's rounding never flips a status.
_REL_EPSILON = 1e-9


def _snap(value: float, thresholds: Thresholds) -> float:
    # the last close bound wins, as in _snap_array (and the codes built from it): two bounds
    # within the tolerance of one value must not give scalars and arrays different statuses
    snapped = value
    for bound in (thresholds.good, thresholds.warning, thresholds.critical):
        if bound is not None and abs(value - bound) <= _REL_EPSILON * max(1.0, abs(bound)):
            snapped = bound
    return snapped


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


def _reference_codes(values: np.ndarray, direction: Direction, thresholds: Thresholds,
                     target: float | None, tolerance: float | None) -> np.ndarray:
    """Status codes by the rules written out, one masked store per rule. The definition that
    :func:`classify_codes` reproduces; run as it is only on a few values, or on thresholds
    that are not finite numbers."""
    values = np.asarray(values, dtype=np.float64)
    good, warning, critical = thresholds.good, thresholds.warning, thresholds.critical
    codes = np.full(values.shape, _INDEX[Status.OK], dtype=np.uint8)
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore", over="ignore"):
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
    return codes


def _close_range(bound: float) -> tuple[float, float]:
    """The smallest and largest doubles ``v`` with ``abs(v - bound) <= tolerance``, as
    :func:`_snap_array` computes it: the rounded difference grows with ``v``, so the test is
    exactly ``lo <= v <= hi``."""
    tol = _REL_EPSILON * max(1.0, abs(bound))
    b = np.float64(bound)

    def close(v: np.float64) -> bool:
        return bool(np.abs(v - b) <= tol)

    hi = b + np.float64(tol)
    while close(np.nextafter(hi, np.inf)):
        hi = np.nextafter(hi, np.inf)
    while not close(hi):
        hi = np.nextafter(hi, -np.inf)
    lo = b - np.float64(tol)
    while close(np.nextafter(lo, -np.inf)):
        lo = np.nextafter(lo, -np.inf)
    while not close(lo):
        lo = np.nextafter(lo, np.inf)
    return float(lo), float(hi)


@dataclass(frozen=True, slots=True)
class _Steps:
    """A classification as a step function of the (target: distance) value: the status index
    is ``table[number of boundaries passed]``, a boundary ``(x, inclusive)`` being passed by
    ``v >= x`` (inclusive) or ``v > x``. ``count`` says how codes come out of the count
    without indexing ``table``: ``"passed"`` when ``table`` is 0, 1, 2 ... (lower is better,
    target), ``"not passed"`` when it is ... 2, 1, 0 (higher is better), else ``"table"``."""

    boundaries: tuple[tuple[float, bool], ...]
    table: np.ndarray
    count: str = "table"


@functools.lru_cache(maxsize=1024)
def _steps(direction: Direction, thresholds: Thresholds, target: float | None,
           tolerance: float | None) -> _Steps | None:
    """Every comparison of the rules (snapping included) is ``v`` against one of a few
    constants, so the status is constant between and at those points: classify one value of
    each such cell with the written-out rules, and keep the points where the status changes.
    None when a threshold is not a finite number (the written-out rules then run as they are)."""
    bounds = [b for b in (thresholds.good, thresholds.warning, thresholds.critical)
              if b is not None]
    extra = [tolerance if tolerance is not None else (thresholds.good or 0.0)] \
        if direction is Direction.TARGET else []
    if not all(math.isfinite(b) for b in bounds + extra + [target or 0.0]):
        return None
    points = set(bounds + extra)
    for b in bounds:
        points.update(_close_range(b))
    ordered = sorted(points)
    # one representative per cell: below everything, each point, between neighbours, above
    cells: list[tuple[float, tuple[float, bool] | None]] = [
        (float(np.nextafter(ordered[0], -np.inf)) if ordered else 0.0, None)]
    if direction is Direction.TARGET:  # a distance is never below 0 (-0.0 == 0.0)
        ordered = [0.0] + [p for p in ordered if p > 0.0]
        cells = []
    for i, p in enumerate(ordered):
        cells.append((p, (p, True) if cells else None))
        after = float(np.nextafter(p, np.inf))
        if i + 1 == len(ordered) or after < ordered[i + 1]:
            cells.append((after, (p, False)))
    reps = np.array([v for v, _ in cells], dtype=np.float64)
    if direction is Direction.TARGET:
        # the rules see the distance: classify it as a value at distance ``rep`` from 0
        codes = _reference_codes(reps, direction, thresholds, 0.0, tolerance)
    else:
        codes = _reference_codes(reps, direction, thresholds, target, tolerance)
    boundaries: list[tuple[float, bool]] = []
    table = [int(codes[0])]
    for (_, entry), code in zip(cells[1:], codes[1:].tolist()):
        if code != table[-1]:
            assert entry is not None
            boundaries.append(entry)
            table.append(code)
    count = "passed" if table == list(range(len(table))) else \
        "not passed" if table == list(range(len(table)))[::-1] else "table"
    return _Steps(tuple(boundaries), np.array(table, dtype=np.uint8), count)


def classify_codes(values: np.ndarray, direction: Direction, thresholds: Thresholds,
                   target: float | None = None, tolerance: float | None = None,
                   all_finite: bool = False) -> np.ndarray:
    """Vectorised :func:`classify` as uint8 codes (the index of the :class:`Status` in its
    enum order, :data:`STATUSES`). ``all_finite`` says the caller knows every value is finite
    (the engine does: a formula's value is finite wherever it has no reason)."""
    values = np.asarray(values, dtype=np.float64)
    steps = _steps(direction, thresholds, target, tolerance)
    if steps is None:
        return _reference_codes(values, direction, thresholds, target, tolerance)
    x = values
    if direction is Direction.TARGET:
        with np.errstate(invalid="ignore", over="ignore"):
            x = np.subtract(values, target or 0.0)
            np.abs(x, out=x)
    # the number of boundaries passed (or not passed: ``v < x`` is not passing ``v >= x``), as
    # uint8 sums of comparisons, the first written straight into the codes: a pass or two per
    # boundary and no indexing, where masked stores and object arrays took several passes
    codes: np.ndarray = np.empty(values.shape, dtype=np.uint8)
    if not steps.boundaries:
        codes.fill(steps.table[0])
    flip = steps.count == "not passed"
    compare = ((np.less, np.less_equal) if flip else (np.greater, np.greater_equal))
    passed = None
    for i, (bound, inclusive) in enumerate(steps.boundaries):
        ufunc = compare[inclusive != flip]
        if i == 0:
            ufunc(x, bound, out=codes.view(np.bool_))
            continue
        if passed is None:
            passed = np.empty(values.shape, dtype=np.bool_)
        ufunc(x, bound, out=passed)
        np.add(codes, passed, out=codes, casting="unsafe")
    if steps.count == "table" and steps.boundaries:
        codes = steps.table[codes]
    if not all_finite:
        unknown = ~np.isfinite(values)  # isfinite never warns: no errstate needed
        if unknown.any():
            codes[unknown] = _INDEX[Status.UNKNOWN]
    return codes


def classify_array(values: np.ndarray, direction: Direction, thresholds: Thresholds,
                   target: float | None = None, tolerance: float | None = None) -> np.ndarray:
    """Vectorised :func:`classify`: an object array of :class:`Status`, one per value."""
    return STATUSES[classify_codes(values, direction, thresholds, target, tolerance)]
