"""The built-in formula functions, registered exactly like a third-party plugin's.

Every function accepts Python floats and float64 arrays (mixed: scalars broadcast). When no
argument is an array the work is done with plain Python floats and a ``float`` comes back:
that path is the hot one (a catalog evaluated per slice) and numpy's per-call overhead would
dominate it; it also keeps Python's exceptions (``math domain error``, overflow). On arrays
the numpy result is returned as is: the engine evaluates under ``np.errstate(all="ignore")``.
Either way the formula engine decides what a non-finite value means (null with a reason, see
``kpiforge._explain``), so scalar and array results must agree to the last bit.

Costs are bounded by the formula's size, never by an argument's value: every function does a
fixed number of operations per slice. The one argument that used to set a cost, ``round``'s
digits, must be a whole number from -15 to 15 (numpy loops once per digit); outside that range
the result is null with a reason (:class:`kpiforge.errors.ArgumentError`).
"""

from __future__ import annotations

import math
import sys
from functools import reduce
from types import ModuleType
from typing import TYPE_CHECKING, Any

from kpiforge.errors import ArgumentError
from kpiforge.hookspecs import hookimpl

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "abs_",
    "clip",
    "coalesce",
    "exp",
    "kpiforge_register_functions",
    "log",
    "max_",
    "min_",
    "round_",
    "safe_div",
    "sqrt",
    "where",
]

_NAN = float("nan")


# numpy is imported on the first call that needs it, not with the plugin: registering these
# functions is part of `kpiforge validate`, which computes nothing. No array can exist before
# numpy is imported, so a float (the hot path) is told from an array without numpy.
def _np() -> ModuleType:
    import numpy  # a dictionary look-up once imported

    return numpy


def _is_array(x: Any) -> bool:
    numpy = sys.modules.get("numpy")
    return numpy is not None and type(x) is numpy.ndarray


def _has_array(args: tuple[Any, ...]) -> bool:
    for a in args:
        if type(a) is not float and _is_array(a):
            return True
    return False


def _floats(args: tuple[Any, ...]) -> list[float]:
    return [a if type(a) is float else float(a) for a in args]


def min_(*args: Any) -> Any:
    """Smallest argument, slice by slice; a missing or failed argument makes it null."""
    if _has_array(args):
        return reduce(_np().minimum, args)
    values = _floats(args)
    for v in values:
        if v != v:
            return v
    return min(values)


def max_(*args: Any) -> Any:
    """Largest argument, slice by slice; a missing or failed argument makes it null."""
    if _has_array(args):
        return reduce(_np().maximum, args)
    values = _floats(args)
    for v in values:
        if v != v:
            return v
    return max(values)


def abs_(x: Any) -> Any:
    """Absolute value."""
    if type(x) is float:
        return abs(x)
    if _is_array(x):
        return _np().abs(x)
    return abs(float(x))


ROUND_DIGITS = 15  # 10 ** 15 < 2 ** 53: every power of ten used is an exact float
_POW10 = tuple(10.0 ** k for k in range(ROUND_DIGITS + 1))
_INTEGRAL = 2.0 ** 52  # every float at least this large is a whole number already


def _round_digits(ndigits: Any) -> int:
    d = ndigits if type(ndigits) is float else float(ndigits)
    if d != d or not -ROUND_DIGITS <= d <= ROUND_DIGITS or d != int(d):
        raise ArgumentError(f"round(): digits must be a whole number from -{ROUND_DIGITS} to "
                            f"{ROUND_DIGITS}, not {d:.15g}")
    return int(d)


def round_(x: Any, ndigits: Any = 0.0) -> Any:
    """Round half to even to ``ndigits`` decimals, a whole number from -15 to 15 (negative
    rounds to tens, hundreds...); other digits give null with a reason. Columns and single
    values are rounded by the same steps, so they agree to the last bit."""
    if type(ndigits) is not float and _is_array(ndigits):
        return _round_columns(_np().asarray(x, dtype=float), ndigits)
    d = _round_digits(ndigits)
    if type(x) is not float and _is_array(x):
        np = _np()
        f = _POW10[abs(d)]
        r = np.rint(x * f) / f if d >= 0 else np.rint(x / f) * f
        # numpy's fmax/fmin skip NaN: two cheap reductions in the common case instead of a
        # mask, which is needed only when some slice is huge (x * f could overflow)
        if x.size and not -_INTEGRAL < np.fmin.reduce(x) <= np.fmax.reduce(x) < _INTEGRAL:
            r = np.where(np.abs(x) < _INTEGRAL, r, x)
        return r
    x = x if type(x) is float else float(x)
    if not -_INTEGRAL < x < _INTEGRAL:  # NaN, infinities and whole numbers stay as they are
        return x
    f = _POW10[abs(d)]
    if d >= 0:
        y = x * f
        # copysign: -0.4 rounds to -0.0, as numpy's rint gives
        return (math.copysign(round(y), y) if -_INTEGRAL < y < _INTEGRAL else y) / f
    y = x / f
    return math.copysign(round(y), y) * f


def _round_columns(x: np.ndarray, ndigits: np.ndarray) -> np.ndarray:
    # digits that vary by slice; a slice with bad digits is NaN, explained per slice by the
    # engine (the scalar call raises the reason)
    np = _np()
    d = np.asarray(ndigits, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = (np.abs(d) <= ROUND_DIGITS) & (d == np.rint(d))
    d = np.where(ok, d, 0.0)
    f = np.power(10.0, np.abs(d))
    up = d >= 0
    r = np.rint(np.where(up, x * f, x / f))
    r = np.where(up, r / f, r * f)
    r = np.where(np.abs(x) < _INTEGRAL, r, x)
    return np.where(ok, r, np.nan)


def sqrt(x: Any) -> Any:
    """Square root; negative input is a math domain error."""
    if type(x) is float:
        return math.sqrt(x)
    if _is_array(x):
        return _np().sqrt(x)
    return math.sqrt(float(x))


def log(x: Any, base: Any = None) -> Any:
    """Natural logarithm, or logarithm to ``base`` (> 0, not 1); x <= 0 is a math domain error."""
    # math raises for the domain errors the engine names; the value itself comes from numpy on
    # both paths, because numpy's SIMD log and exp may differ from libm's by one ulp and
    # scalar and array evaluation must agree to the last bit
    np = _np()
    if base is None:
        if _is_array(x):
            return np.log(x)
        math.log(float(x))
        return float(np.log(float(x)))
    if _is_array(x) or _is_array(base):
        lb = np.log(base)
        # a base of 0 has log -inf, and x / -inf would read as 0: a domain error, as for math
        return np.log(x) / np.where(lb == -np.inf, np.nan, lb)
    math.log(float(x), float(base))
    return float(np.log(float(x)) / np.log(float(base)))


def exp(x: Any) -> Any:
    """e ** x; overflow is reported as a non-finite result."""
    np = _np()
    if _is_array(x):
        return np.exp(x)
    math.exp(float(x))  # OverflowError, as the engine reports it; the value as numpy's (see log)
    return float(np.exp(float(x)))


def clip(x: Any, lo: Any, hi: Any) -> Any:
    """``x`` limited to ``[lo, hi]`` (``hi`` wins if ``lo > hi``); NaN in any argument gives NaN."""
    if _has_array((x, lo, hi)):
        np = _np()
        return np.minimum(np.maximum(x, lo), hi)
    x, lo, hi = _floats((x, lo, hi))
    if x != x or lo != lo or hi != hi:
        return _NAN
    if x < lo:
        x = lo
    if x > hi:
        x = hi
    return x


def safe_div(a: Any, b: Any, default: Any = 0.0) -> Any:
    """``a / b``, or ``default`` where ``b == 0``, ``a`` or ``b`` is not a finite number (a
    missing input, a failed computation) or the quotient is not finite."""
    if _has_array((a, b, default)):
        np = _np()
        with np.errstate(all="ignore"):
            q = np.divide(a, b)
            ok = np.isfinite(q) & (np.asarray(b) != 0) & np.isfinite(a) & np.isfinite(b)
        return np.where(ok, q, default)
    a, b, default = _floats((a, b, default))
    if b == 0.0 or a - a != 0.0 or b - b != 0.0:
        return default
    try:
        q = a / b
    except OverflowError:
        return default
    if q - q != 0.0:
        return default
    return q


def where(cond: Any, a: Any, b: Any) -> Any:
    """``a`` where ``cond`` is non-zero, else ``b``, exactly like ``a if cond else b``: the branch
    not chosen never makes the result null (``where(n > 0, x / n, 0)`` is 0 for n = 0)."""
    if _has_array((cond, a, b)):
        return _np().where(cond, a, b)
    return float(a) if cond else float(b)


def coalesce(*args: Any) -> Any:
    """The first argument that is a finite number, slice by slice: a missing input or a failed
    computation (``sqrt(-1)``, ``1 / 0``) is skipped; null if no argument is."""
    if _has_array(args):
        np = _np()
        arrays = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in args])
        out = arrays[0].copy()
        for nxt in arrays[1:]:
            gap = ~np.isfinite(out)
            if not gap.any():
                break
            out[gap] = nxt[gap]
        out[~np.isfinite(out)] = _NAN
        return out
    for a in args:
        if a - a == 0.0:
            return a if type(a) is float else float(a)
    return _NAN


_BUILTINS: tuple[tuple[str, Any, int, int | None], ...] = (
    ("min", min_, 1, None),
    ("max", max_, 1, None),
    ("abs", abs_, 1, 1),
    ("round", round_, 1, 2),
    ("sqrt", sqrt, 1, 1),
    ("log", log, 1, 2),
    ("exp", exp, 1, 1),
    ("clip", clip, 3, 3),
    ("safe_div", safe_div, 2, 3),
    ("where", where, 3, 3),
    ("coalesce", coalesce, 1, None),
)


@hookimpl
def kpiforge_register_functions(register: Any) -> None:
    for name, func, min_args, max_args in _BUILTINS:
        doc = (func.__doc__ or "").strip()
        register(name, func, min_args=min_args, max_args=max_args, doc=doc)
