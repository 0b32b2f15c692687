"""Guards that keep the fast evaluation trees from laundering a poisoned value.

A poison (see ``_explain``) is NaN or an infinity in array mode, and NaN, an infinity or a
raised exception in scalar mode. Arithmetic carries it to the result by itself; a few
operations would turn it back into an ordinary number (``x / inf`` is 0, ``min(inf, 5)`` is
5, ``nan > 0`` is false, ``1 ** nan`` is 1, ``exp(-inf)`` is 0). The lowering wraps exactly
those operands in the internals below, so that a poisoned slice always ends non-finite (array
mode) or failed (scalar mode), and is then evaluated again by ``_explain.explain``.

Every name starts with ``_``: formulas can never call them (the allow-list refuses such names).
"""

from __future__ import annotations

import ast
import math
from typing import Any, Callable, cast

import numpy as np

_ndarray = np.ndarray
_NAN = float("nan")
_isfinite = math.isfinite
_add_reduce = np.add.reduce


def all_finite(x: np.ndarray) -> bool:
    """True when every element of ``x`` is finite; may say False for huge finite values.

    The sum is NaN or an infinity as soon as one element is (``inf * 0`` and ``NaN * 0`` are
    NaN), in one pass that allocates nothing. Unlike ``x.dot(x)``, which it replaces, it never
    goes through BLAS, whose threads made the check 0.2 ms -> 12 ms per formula at 1e6 slices
    when the other core was busy (issue 11); ``np.isfinite(x).all()`` would be exact but takes
    two passes and an allocation. A sum that overflows on finite values only sends the caller
    to its exact, slice-by-slice path. Callers run inside ``np.errstate(all="ignore")`` (the
    array trees always do), so the overflow warns nothing.
    """
    return bool(_add_reduce(x, axis=None) * 0.0 == 0.0)


class Poisoned(ArithmeticError):
    """Raised by a scalar guard; the evaluation is handed to the explainer."""


# --------------------------------------------------------------------------- scalar mode

def _s_chk(x: Any) -> Any:
    if x - x == 0.0:  # False for NaN and infinities
        return x
    raise Poisoned()


def _s_pow(a: Any, b: Any) -> Any:
    a = a if type(a) is float else float(a)
    b = b if type(b) is float else float(b)
    if a - a != 0.0 or b - b != 0.0:
        raise Poisoned()
    r = a ** b  # asteval's own ``**`` refuses exponents above 10,000: use Python's
    if type(r) is complex:
        raise ValueError("math domain error")
    return r


def _s_truth(v: Any) -> bool:
    # Python's ``a or b`` returns an operand; formulas define and/or as boolean (1/0)
    return bool(v)


def _s_pcall(func: Any, *args: Any) -> Any:
    for a in args:
        if a - a != 0.0:
            raise Poisoned()
    return func(*args)


SCALAR: dict[str, Callable[..., Any]] = {
    "_chk": _s_chk, "_pow": _s_pow, "_truth": _s_truth, "_pcall": _s_pcall}


# --------------------------------------------------------------------------- array mode

def _poison(r: Any, *operands: Any) -> Any:
    """``r`` with NaN wherever an operand is not finite."""
    for op in operands:
        if type(op) is _ndarray:
            if op.dtype.kind != "f" or all_finite(op):
                continue  # one cheap pass: NaN or inf when some slice is not finite
            with np.errstate(invalid="ignore", over="ignore"):
                ok = np.isfinite(op)
            if not ok.all():
                r = np.where(ok, r, _NAN)
        elif not _isfinite(op):
            r = np.full(np.shape(r), _NAN) if np.ndim(r) else _NAN
    return r


def _a_fin(x: Any) -> Any:
    """``x`` with infinities turned into NaN, which every operation propagates."""
    if type(x) is _ndarray:
        if x.dtype.kind in "biu" or all_finite(x):  # a plugin's object array is summed too
            return x
        return np.where(np.isinf(x), _NAN, x)
    return x if not math.isinf(x) else _NAN


def _a_pow(a: Any, b: Any) -> Any:
    return _poison(np.power(a, b), a, b)


def _comparison(ufunc: np.ufunc) -> Any:
    def compare(a: Any, b: Any) -> Any:
        return _poison(ufunc(a, b) + 0.0, a, b)
    return compare


_COMPARE = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt",
            ast.GtE: "ge"}


def _a_and(*args: Any) -> Any:
    return _shortcut(args, True)


def _a_or(*args: Any) -> Any:
    return _shortcut(args, False)


def _shortcut(args: tuple[Any, ...], is_and: bool) -> Any:
    # slice by slice as Python evaluates it: the first operand that decides wins, a poisoned
    # operand reached before that poisons the slice, operands after it do not matter
    undecided: Any = True
    poisoned: Any = False
    for v in args:
        bad = ~np.isfinite(v)
        poisoned = poisoned | (undecided & bad)
        undecided = undecided & ~bad & ((v != 0) if is_and else (v == 0))
    value = (undecided + 0.0) if is_and else (1.0 - undecided)
    return np.where(poisoned, _NAN, value)


def _a_not(a: Any) -> Any:
    return _poison(np.logical_not(a) + 0.0, a)


def _a_where(c: Any, a: Any, b: Any) -> Any:
    return _poison(np.where(c, a, b), c)


def _a_pcall(func: Any, *args: Any) -> Any:
    return _poison(func(*args), *args)


ARRAY: dict[str, Callable[..., Any]] = {"_fin": _a_fin, "_pow": _a_pow, "_and": _a_and, "_or": _a_or,
         "_not": _a_not, "_where": _a_where, "_pcall": _a_pcall,
         "_cmp_eq": _comparison(np.equal), "_cmp_ne": _comparison(np.not_equal),
         "_cmp_lt": _comparison(np.less), "_cmp_le": _comparison(np.less_equal),
         "_cmp_gt": _comparison(np.greater), "_cmp_ge": _comparison(np.greater_equal)}
SCALAR["_fin"] = _s_chk


def comparison_name(op: ast.cmpop) -> str:
    return f"_cmp_{_COMPARE[type(op)]}"

# --------------------------------------------------------------------------- analysis

# builtins whose result is finite or NaN when their arguments are (after the guards below)
_TAME = {"abs", "sqrt", "round", "min", "max", "clip", "coalesce"}


def _number(node: ast.AST) -> float | None:
    """The number a constant node holds, else None (the checker lets numbers only through)."""
    if type(node) is ast.Constant and isinstance(node.value, (int, float)):
        return node.value
    return None


def may_be_infinite(node: ast.AST, builtins: frozenset[str]) -> bool:
    """Whether a checked node can yield an infinity although every input is finite or NaN.

    Only such operands need the (cheap, but not free) infinity guard in a denominator or a
    ``min``; names and constants never do, which keeps ``clicks / impressions`` guard-free.
    """
    kind = type(node)
    if kind in (ast.Constant, ast.Name, ast.Compare, ast.BoolOp):
        return False
    if type(node) is ast.UnaryOp:
        if type(node.op) is ast.Not:
            return False
        return may_be_infinite(node.operand, builtins)
    if type(node) is ast.BinOp:
        op, left, right = type(node.op), node.left, node.right
        constant = _number(right)
        if op is ast.Div and constant is not None and abs(constant) >= 1:
            return may_be_infinite(left, builtins)
        if op is ast.Mult and constant is not None and abs(constant) <= 1:
            return may_be_infinite(left, builtins)
        return True
    if type(node) is ast.IfExp:
        return may_be_infinite(node.body, builtins) or may_be_infinite(node.orelse, builtins)
    if type(node) is ast.Call:
        name = cast(ast.Name, node.func).id
        if name not in builtins:
            return True
        if name in ("min", "max", "clip", "coalesce"):
            return False  # guarded arguments, or a handler that skips non-finite ones
        if name in ("abs", "sqrt", "round"):
            return may_be_infinite(node.args[0], builtins)
        if name == "where":
            return any(may_be_infinite(a, builtins) for a in node.args[1:])
        if name == "safe_div":
            return len(node.args) > 2 and may_be_infinite(node.args[2], builtins)
        return True
    return True


def finite_or_raises(node: ast.AST) -> bool:
    """Lowered scalar nodes that give a plain 0/1 or raise: no truth-test guard needed."""
    if type(node) is ast.Compare:
        return True
    if type(node) is ast.UnaryOp and type(node.op) is ast.Not:
        return True
    if type(node) is ast.Call and cast(ast.Name, node.func).id == "_truth":
        return True
    if type(node) is ast.Constant:
        return True
    return False


__all__ = ["ARRAY", "Poisoned", "SCALAR", "all_finite", "comparison_name", "finite_or_raises",
           "may_be_infinite"]
