"""The one definition of what a formula gives when something in it is not a number.

The rule (the module docstring of ``_formulas`` and the README state it for users): a value
that is not a finite number -- a missing input, a division by zero, a math domain error, an
overflow -- *poisons* everything computed from it, and the KPI is null with the reason of the
poison. Only these constructs stop a poison, because they exist to handle it:

* ``coalesce(a, b, ...)`` takes the first argument that is not poisoned;
* ``safe_div(a, b, default)`` gives ``default`` when ``a`` or ``b`` is poisoned, ``b`` is 0 or
  the quotient is not finite;
* the branch not chosen by ``a if c else b`` or ``where(c, a, b)``, and the operands that
  ``and`` / ``or`` / a chained comparison never reach (``y != 0 and x / y > 1``).

The reason is the first missing input, in alphabetical order, among the inputs the formula
always needs (those outside the constructs above); otherwise the first failure in evaluation
order (left to right, innermost first).

Both evaluation paths use their fast trees for the slices where nothing went wrong and this
module for every slice that failed: :func:`explain_codes` evaluates the checked tree over the failed
slices, vectorised, tracking each slice's poison and reason. So a scalar and an array
evaluation of the same inputs give the same value and the same reason by construction.
"""

from __future__ import annotations

import ast
import operator
from typing import Any, Callable, Mapping, cast

import numpy as np

from ._reasons import (
    _HANDLERS,
    REASON_DIVISION,
    REASON_DOMAIN,
    REASON_NOT_FINITE,
    Reason,
    builtin,
    missing_input,
    reason_of,
)
from .errors import ArgumentError

_NAN = float("nan")

_CMP: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide,
    ast.FloorDiv: np.floor_divide, ast.Mod: np.remainder, ast.Pow: np.power,
}


class _Explainer:
    """Evaluates a checked tree over ``m`` slices; each node gives (values, reasons or None).

    Reasons are int32 codes into ``self.table`` (0: not poisoned), so that merging them is
    integer work, not object-array work. Invariant: where a slice's code is 0 its value is
    finite; where it is set the value is NaN.
    """

    def __init__(self, functions: Mapping[str, Any], values: Mapping[str, Any], m: int):
        self.functions = functions
        self.values = values
        self.m = m
        self.table: list[str | None] = [None]
        self.index: dict[str, int] = {}

    def code(self, reason: str) -> int:
        found = self.index.get(reason)
        if found is None:
            found = self.index[reason] = len(self.table)
            self.table.append(reason)
        return found

    def blank(self) -> np.ndarray:
        return np.zeros(self.m, dtype=np.int32)

    # -- helpers
    def full(self, value: float) -> np.ndarray:
        return np.full(self.m, value, dtype=np.float64)

    def settle(self, v: Any, why: np.ndarray | None, new: list[tuple[np.ndarray, str]]
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """Apply new failures (mask, reason) where the slice is not yet poisoned, in order,
        then mark what is still non-finite as not finite."""
        v = _column(v, self.m)
        for mask, reason in new:
            if type(mask) is not np.ndarray or mask.shape != (self.m,):
                mask = np.broadcast_to(mask, (self.m,))
            if why is not None:
                mask = mask & _clean(why)
            if mask.any():
                why = self.blank() if why is None else why.copy()
                why[mask] = self.code(reason)
        bad = ~np.isfinite(v)
        if why is not None:
            bad &= _clean(why)
        if bad.any():
            why = self.blank() if why is None else why.copy()
            why[bad] = self.code(REASON_NOT_FINITE)
        if why is not None:
            v[~_clean(why)] = _NAN
        return v, why

    # -- nodes
    def ev(self, node: ast.AST) -> tuple[np.ndarray, np.ndarray | None]:
        if type(node) is ast.Constant:
            return self.full(float(cast(float, node.value))), None
        if type(node) is ast.Name:
            return self.name(node.id)
        if type(node) is ast.BinOp:
            return self.binop(node)
        if type(node) is ast.UnaryOp:
            a, why = self.ev(node.operand)
            op = type(node.op)
            if op is ast.Not:
                return self.settle((a == 0) + 0.0, why, [])
            return self.settle(-a if op is ast.USub else a, why, [])
        if type(node) is ast.Compare:
            return self.compare(node)
        if type(node) is ast.BoolOp:
            return self.boolop(node)
        if type(node) is ast.IfExp:
            return self.choose(node.test, node.body, node.orelse)
        if type(node) is ast.Call:
            return self.call(node)
        raise AssertionError(f"unchecked node {type(node).__name__}")

    def name(self, name: str) -> tuple[np.ndarray, np.ndarray | None]:
        v = _column(self.values[name], self.m)
        missing = np.isnan(v)
        if not missing.any():
            return v, None
        why = self.blank()
        why[missing] = self.code(missing_input(name))
        return v, why

    def binop(self, node: ast.BinOp) -> tuple[np.ndarray, np.ndarray | None]:
        a, ra = self.ev(node.left)
        if _all_poisoned(ra):  # the left operand's reasons win everywhere
            return a, ra
        b, rb = self.ev(node.right)
        why = _merge(ra, rb)
        op = type(node.op)
        with np.errstate(all="ignore"):
            r = _ARITH[op](a, b)
            new: list[tuple[np.ndarray, str]] = []
            if op in (ast.Div, ast.FloorDiv, ast.Mod):
                new.append((b == 0, REASON_DIVISION))
            elif op is ast.Pow:
                # Python's float power: 0 ** negative divides by zero, a negative base with a
                # fractional exponent is complex (a domain error)
                new.append(((a == 0) & (b < 0), REASON_DIVISION))
                new.append(((a < 0) & (b != np.floor(b)), REASON_DOMAIN))
        return self.settle(r, why, new)

    def compare(self, node: ast.Compare) -> tuple[np.ndarray, np.ndarray | None]:
        a, why = self.ev(node.left)
        result = np.ones(self.m, dtype=bool)
        for op, comparator in zip(node.ops, node.comparators):
            b, rb = self.ev(comparator)
            live = result & _clean(why)  # a false link stops the chain, as Python's does
            if rb is not None:
                hit = live & ~_clean(rb)
                if hit.any():
                    why = self.blank() if why is None else why.copy()
                    why[hit] = rb[hit]
            result = result & _CMP[type(op)](a, b)
            a = b
        return self.settle(result + 0.0, why, [])

    def boolop(self, node: ast.BoolOp) -> tuple[np.ndarray, np.ndarray | None]:
        is_and = type(node.op) is ast.And
        decided = np.zeros(self.m, dtype=bool)
        result = np.full(self.m, is_and)
        why: np.ndarray | None = None
        for value in node.values:
            v, rv = self.ev(value)
            live = ~decided & _clean(why)
            if rv is not None:
                hit = live & ~_clean(rv)
                if hit.any():
                    why = self.blank() if why is None else why.copy()
                    why[hit] = rv[hit]
                live &= _clean(rv)
            stop = live & ((v == 0) if is_and else (v != 0))
            result[stop] = not is_and
            decided |= stop
        return self.settle(result + 0.0, why, [])

    def choose(self, test: ast.AST, body: ast.AST, orelse: ast.AST
               ) -> tuple[np.ndarray, np.ndarray | None]:
        c, why = self.ev(test)
        a, ra = self.ev(body)
        b, rb = self.ev(orelse)
        pick = c != 0
        v = np.where(pick, a, b)
        if ra is not None or rb is not None:
            branch = np.where(pick, ra if ra is not None else 0, rb if rb is not None else 0)
            why = _merge(why, branch)
        return self.settle(v, why, [])

    def call(self, node: ast.Call) -> tuple[np.ndarray, np.ndarray | None]:
        name = cast(ast.Name, node.func).id
        func = self.functions[name].func
        args = node.args
        if name in _HANDLERS and func is builtin(name):
            if name == "where":
                return self.choose(args[0], args[1], args[2])
            if name == "coalesce":
                return self.coalesce(args)
            return self.safe_div(args)
        why = None
        arrays = []
        for arg in args:
            v, r = self.ev(arg)
            why = _merge(why, r)
            if _all_poisoned(why):  # the later arguments cannot change any reason
                return self.full(_NAN), why
            arrays.append(v)
        if name in ("sqrt", "log", "round") and func is builtin(name):
            return self.checked_builtin(name, func, arrays, why)
        return self.plugin_call(func, arrays, why)

    def coalesce(self, args: list[ast.expr]) -> tuple[np.ndarray, np.ndarray | None]:
        v = self.full(_NAN)
        pending = np.ones(self.m, dtype=bool)
        first: np.ndarray | None = None
        for i, arg in enumerate(args):
            x, rx = self.ev(arg)
            if i == 0:
                first = rx
            ok = pending & _clean(rx)
            v[ok] = x[ok]
            pending &= ~ok
        why = None
        if pending.any():
            why = self.blank()
            # a slice still pending was not clean in the first argument: that one had reasons
            why[pending] = cast(np.ndarray, first)[pending]
        return v, why

    def safe_div(self, args: list[ast.expr]) -> tuple[np.ndarray, np.ndarray | None]:
        a, ra = self.ev(args[0])
        b, rb = self.ev(args[1])
        with np.errstate(all="ignore"):
            q = a / b
        ok = _clean(ra) & _clean(rb) & (b != 0) & np.isfinite(q)
        d, rd = self.ev(args[2]) if len(args) > 2 else (self.full(0.0), None)
        why = None
        if rd is not None:
            why = np.where(ok, 0, rd).astype(np.int32)
        return self.settle(np.where(ok, q, d), why, [])

    def checked_builtin(self, name: str, func: Any, args: list[np.ndarray],
                        why: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        new: list[tuple[np.ndarray, str]] = []
        with np.errstate(all="ignore"):
            if name == "sqrt":
                new.append((args[0] < 0, REASON_DOMAIN))
                r = np.sqrt(args[0])
            elif name == "log":
                new.append((args[0] <= 0, REASON_DOMAIN))
                if len(args) > 1:
                    new.append((args[1] <= 0, REASON_DOMAIN))
                    new.append((args[1] == 1, REASON_DIVISION))
                r = func(*args)
            else:  # round: digits are checked slice by slice, one message per bad value
                digits = args[1] if len(args) > 1 else self.full(0.0)
                bad = ~((np.abs(digits) <= 15) & (digits == np.rint(digits)))
                bad &= _clean(why)
                for value in np.unique(digits[bad]).tolist():  # one per distinct bad value
                    try:
                        func(1.0, value)
                    except ArgumentError as exc:
                        new.append((bad & ((digits == value) | (np.isnan(digits)
                                                              & (value != value))),
                                    reason_of(exc)))
                r = func(args[0], np.where(bad, 0.0, digits))
        return self.settle(r, why, new)

    def plugin_call(self, func: Any, args: list[np.ndarray], why: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        live = np.arange(self.m) if why is None else np.flatnonzero(_clean(why))
        out = self.full(_NAN)
        if not len(live):
            return out, why
        try:
            with np.errstate(all="ignore"):
                r = func(*[a[live] for a in args])
            r = np.array(np.broadcast_to(np.asarray(r, dtype=np.float64), (len(live),)))
        except Exception:  # a plugin that refuses columns: one call per slice below
            r = np.full(len(live), _NAN)
        out[live] = r
        todo = live[~np.isfinite(r)]
        if not len(todo):
            return out, why
        # per slice only where the column call failed, for the exact exception: memoised
        memo: dict[tuple[float, ...], tuple[float, str | None]] = {}
        failures: dict[str, list[int]] = {}
        for i in todo.tolist():
            key = tuple(float(a[i]) for a in args)
            if key not in memo:
                memo[key] = _call_one(func, key)
            value, reason = memo[key]
            if reason is None:
                out[i] = value
            else:
                failures.setdefault(reason, []).append(i)
        new = []
        for reason, idx in failures.items():
            mask = np.zeros(self.m, dtype=bool)
            mask[idx] = True
            new.append((mask, reason))
        return self.settle(out, why, new)


def _call_one(func: Any, args: tuple[float, ...]) -> tuple[float, str | None]:
    try:
        r = func(*args)
    except Exception as exc:  # a plugin's failure is the slice's reason, never a crash
        return _NAN, reason_of(exc)
    if isinstance(r, complex):
        return _NAN, REASON_DOMAIN
    try:
        value = float(r)
    except (TypeError, ValueError):
        return _NAN, Reason("evaluation_error", f"result is not a number: {type(r).__name__}")
    if value - value != 0.0:
        return _NAN, REASON_NOT_FINITE
    return value, None


def _clean(why: np.ndarray | None) -> Any:
    """True where the slice is not poisoned."""
    if why is None:
        return True
    return why == 0


def _all_poisoned(why: np.ndarray | None) -> bool:
    return why is not None and bool(why.all())


def _merge(first: np.ndarray | None, second: np.ndarray | None) -> np.ndarray | None:
    """Per slice, the first reason that is set."""
    if first is None:
        return None if second is None else second.copy()
    if second is None:
        return first
    return np.where(first == 0, second, first)


def _column(v: Any, m: int) -> np.ndarray:
    """A fresh float64 array of m values from an array or a number."""
    if type(v) is np.ndarray and v.shape == (m,):
        return v.astype(np.float64)  # a copy: the explainer writes NaN into its columns
    if type(v) is np.ndarray and v.ndim:
        return np.array(np.broadcast_to(v, (m,)), dtype=np.float64)
    return np.full(m, float(v))


def explain_codes(root: ast.expr, functions: Mapping[str, Any], values: Mapping[str, Any],
                  m: int, needed: tuple[str, ...]
                  ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Value (NaN where null) of ``m`` slices and their reasons as int32 codes into the
    returned table (``table[0]`` is None: not null)."""
    value = np.full(m, _NAN)
    codes = np.zeros(m, dtype=np.int32)
    table: list[str | None] = [None]
    missing_any = np.zeros(m, dtype=bool)
    for name in needed:  # sorted: the first missing input the formula always needs wins
        v = values[name]
        missing = np.isnan(v) if type(v) is np.ndarray and v.ndim else np.full(m, v != v)
        missing &= ~missing_any
        if missing.any():
            codes[missing] = len(table)
            table.append(missing_input(name))
            missing_any |= missing
    todo = np.flatnonzero(~missing_any)
    if len(todo):
        sub = values if len(todo) == m else {
            k: (v[todo] if type(v) is np.ndarray and v.ndim else v) for k, v in values.items()}
        explainer = _Explainer(functions, sub, len(todo))
        with np.errstate(all="ignore"):  # the explainer looks at failures on purpose
            v, r = explainer.ev(root)
        r = explainer.blank() if r is None else r.copy()
        r[~np.isfinite(v) & (r == 0)] = explainer.code(REASON_NOT_FINITE)  # an infinite input
        v[r != 0] = _NAN
        value[todo] = v
        offset = len(table) - 1  # the explainer's own codes start at 1 too
        table.extend(explainer.table[1:])
        codes[todo] = np.where(r != 0, r + offset, 0)
    return value, codes, table

