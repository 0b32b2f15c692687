"""Compile and evaluate KPI formulas: ``compile_formula`` and the :class:`Formula` it gives.

Formulas come from YAML files and are untrusted. Two independent layers keep them contained:

1. Our own AST allow-list, checked at compile time (``_formula_check``): numbers, names,
   arithmetic, comparisons, ``and``/``or``/``not``, ``a if c else b`` and positional calls to
   registered functions. Everything else is rejected with a :class:`FormulaError` that names
   the construct and its column, before anything runs.
2. asteval in its minimal configuration with every node handler we do not emit switched off,
   run against a symbol table that holds *only* the functions the formula calls and its inputs
   (``_formula_interp``, which also lists the asteval traps handled).

What a formula gives when something in it is not a number -- one rule for scalars and arrays:

* A value that is not a finite number -- a missing input, a division by zero, a math domain
  error (``sqrt(-1)``, ``log(0)``), an overflow, a function argument out of its range
  (``round(x, 99)``) -- *poisons* everything computed from it: the result is null with that
  reason. Nothing turns a poison back into a number: ``min(1 / 0, 5)``, ``clip(1 / 0, 0, 1)``,
  ``(1 / 0) ** -1``, ``1 / 0 > 0`` and ``x > 5`` with ``x`` missing are all null.
* Only the constructs made to handle it stop a poison: ``coalesce`` (the first argument that
  is not poisoned), ``safe_div`` (its default when an operand is poisoned, the divisor is 0 or
  the quotient is not finite), the branch not chosen by ``a if c else b`` / ``where(c, a, b)``,
  and what ``and`` / ``or`` / a chained comparison never reach (``y != 0 and x / y > 1``).
* The reason is the first missing input, in alphabetical order, among the inputs the formula
  always needs (outside those constructs); otherwise the first failure in evaluation order.
* A plugin's function is called only with finite numbers; a poisoned argument poisons the call.

Three lowered trees are kept per formula. The scalar tree keeps ``if``/``and``/``or`` lazy and
uses Python floats; the array trees (plain, and in-place for big arrays) rewrite those
constructs into elementwise internal calls so one run covers every slice. Both are fast paths:
guards (``_guards``) make sure a poisoned slice ends failed or non-finite, never laundered
into a number. Every slice that failed is then evaluated again by ``_explain.explain_codes`` --
vectorised over the failed slices, for scalars and arrays alike -- which implements the rule
above exactly and gives the value (a handler may rescue it) or the reason. Scalar and array
evaluation therefore agree on value and reason by construction
(``tests/test_formulas_properties.py`` checks it on random formulas).
"""

from __future__ import annotations

import ast
import contextlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from ._explain import explain_codes
from ._formula_check import (MAX_DEPTH, MAX_FORMULA_LENGTH, MAX_NODES, FunctionSpec,
                             check_formula, column_of)
from ._formula_interp import _interpreter, _reason_from_error, _reset
from ._formula_lower import _ARRAY_INTERNALS, _SCALAR_INTERNALS, _internal_names, _is_builtin, _lower
from ._guards import all_finite
from ._inputs import input_array, input_number
from ._reasons import (REASON_DOMAIN, REASON_NOT_FINITE, always_needed, missing_input,
                       reason_objects)
from ._totals import TOTAL, rewrite_totals, total_key
from .errors import InputError

__all__ = [
    "Evaluation",
    "Formula",
    "FunctionSpec",
    "MAX_DEPTH",
    "MAX_FORMULA_LENGTH",
    "MAX_NODES",
    "compile_formula",
    "default_functions",
    "function_specs",
]

_INPLACE_FROM = 65_536  # slices from which array mode reuses temporaries (see _formula_lower)

_NAN = float("nan")
_NAN64 = np.float64("nan")
_ndarray = np.ndarray
_float64 = np.float64
_UNGUARDED = contextlib.nullcontext()
_ABSENT: Any = object()  # not in the namespace (None is in it, and missing)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of one evaluation.

    Scalar mode: ``value`` is a finite ``float`` or None, ``reason`` a str or None.
    Array mode: ``value`` is a float64 array with NaN where null and ``reason`` an object array
    of str/None per slice. When no slice is null the reason array is a shared read-only array
    of None (copy it before writing).
    """

    value: float | None | np.ndarray
    reason: str | None | np.ndarray = None


_new_object = object.__new__
_slots: Mapping[str, Any] = vars(Evaluation)  # the slot descriptors set what __init__ would
_set_value, _set_reason = _slots["value"].__set__, _slots["reason"].__set__


def _evaluation(value: Any, reason: Any) -> Evaluation:
    """``Evaluation(value, reason)`` without the frozen dataclass's ``__init__`` (it sets each
    field through ``object.__setattr__``): half the cost, on the scalar path's every call."""
    e = _new_object(Evaluation)
    _set_value(e, value)
    _set_reason(e, reason)
    return e


def function_specs(registrations: Mapping[str, Any]) -> dict[str, FunctionSpec]:
    """Turn the plugin manager's ``Registration`` table (``Plugins.functions``) into specs."""
    out: dict[str, FunctionSpec] = {}
    for name, reg in registrations.items():
        if isinstance(reg, FunctionSpec):
            out[name] = reg
        else:
            out[name] = FunctionSpec(name, reg.obj, reg.min_args, reg.max_args, reg.doc)
    return out


def default_functions() -> dict[str, FunctionSpec]:
    """The functions registered by the default plugins (built-ins + entry points), loaded now."""
    from ._plugins import load_plugins

    return function_specs(load_plugins().functions)


_to_float = input_number
_NONE_REASONS: dict[int, np.ndarray] = {}


def _none_reasons(n: int) -> np.ndarray:
    # building an object array costs about as much as a whole vectorised formula at 1e6
    # slices, so the all-good answer is one shared read-only array per size
    arr = _NONE_REASONS.get(n)
    if arr is None:
        arr = np.empty(n, dtype=object)
        arr.flags.writeable = False
        if len(_NONE_REASONS) > 16:
            _NONE_REASONS.clear()
        _NONE_REASONS[n] = arr
    return arr


# --------------------------------------------------------------------------- Formula


class Formula:
    """A compiled formula. Immutable; one instance may be evaluated from many threads."""

    __slots__ = ("text", "names", "functions", "_sorted", "_scalar_node", "_array_node",
                 "_big_node", "_scalar_base", "_array_base", "_tree", "_needed", "_specs")

    text: str
    names: frozenset[str]
    functions: frozenset[str]
    _sorted: tuple[str, ...]
    _scalar_node: ast.expr
    _array_node: ast.expr
    _big_node: ast.expr
    _scalar_base: dict[str, Any]  # the symbol table before inputs: functions the formula calls
    _array_base: dict[str, Any]
    _tree: ast.expr | None
    _needed: tuple[str, ...]
    _specs: dict[str, FunctionSpec]
    checked_tree = property(lambda self: self._tree, doc="The allow-listed tree (for _units)")

    def __init__(self, text: str, names: Iterable[str], called: Iterable[str],
                 scalar_node: ast.expr, array_node: ast.expr, big_node: ast.expr,
                 functions: Mapping[str, FunctionSpec], tree: ast.expr | None = None):
        names = frozenset(names)
        called = frozenset(called)
        user = {name: functions[name].func for name in called}
        scalar_base = dict(user)
        scalar_base.update({k: _SCALAR_INTERNALS[k] for k in _internal_names(scalar_node)})
        array_base = dict(user)
        array_base.update({k: _ARRAY_INTERNALS[k] for k in
                           _internal_names(array_node) | _internal_names(big_node)})
        needed = tuple(sorted(always_needed(tree, functions) & names)) if tree is not None \
            else tuple(sorted(names))
        for attr, value in (("text", text), ("names", names), ("functions", called),
                            ("_sorted", tuple(sorted(names))), ("_scalar_node", scalar_node),
                            ("_array_node", array_node), ("_big_node", big_node),
                            ("_scalar_base", scalar_base),
                            ("_array_base", array_base), ("_tree", tree),
                            ("_needed", needed),
                            ("_specs", {name: functions[name] for name in called})):
            object.__setattr__(self, attr, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Formula is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Formula is immutable")

    def __repr__(self) -> str:
        return f"Formula({self.text!r})"

    def __reduce__(self) -> Any:  # the nodes hold numpy scalars; recompiling is simpler
        raise TypeError("Formula objects cannot be pickled; pickle the text and recompile")

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, namespace: Mapping[str, Any], size: int | None = None) -> Evaluation:
        """Evaluate on scalars (``size is None`` and no ndarray values) or on arrays.

        Names absent from ``namespace`` and None values are missing (NaN). Data problems give
        a null value with a reason; only programming errors (text, complex numbers or dates
        as inputs, arrays of unequal length) raise :class:`InputError`.
        """
        if size is not None:
            return self._evaluate_array(namespace, size)
        st = self._scalar_base.copy()
        get = namespace.get
        missing = False
        seen = 0  # the namespace's names this loop checked: when all of them, no scan below
        for name in self._sorted:
            v = get(name, _ABSENT)
            t = type(v)
            if t is float:
                seen += 1
                if v != v:
                    missing = True
            elif v is _ABSENT or v is None:
                seen += v is None
                v = _NAN
                missing = True
            elif t is _ndarray:
                if v.ndim:
                    return self._evaluate_array(namespace, None)
                seen = -1  # a 0-d array: the scan below decides, as for any other array
                v = _to_float(name, v.item())
                missing = missing or v != v
            else:
                seen += 1
                v = _to_float(name, v)
                missing = missing or v != v
            st[name] = v
        # an array anywhere in the namespace selects array mode; a namespace of exactly the
        # formula's inputs (what Engine passes) was checked by the loop
        if seen != len(namespace) and _ndarray in map(type, namespace.values()):
            return self._evaluate_array(namespace, None)
        if missing:  # the first missing input the formula always needs: no need to run
            for name in self._needed:
                v = st[name]
                if v != v:
                    return _evaluation(None, missing_input(name))
        # the common case inline (a call or a tuple per evaluation is a tenth of asteval's
        # own walk): a finite float; anything else goes through _scalar_result
        interp = _interpreter()
        if interp.error:
            _reset(interp)
        interp.symtable = st
        try:
            r = interp.run(self._scalar_node)
        except Exception:
            fallback = _reason_from_error(interp)
            _reset(interp)
            interp.symtable = {}
            return _evaluation(*self._explain_one(st, fallback))
        interp.symtable = {}  # do not keep inputs alive between evaluations
        if type(r) is float and r - r == 0.0:
            return _evaluation(r, None)
        return _evaluation(*self._scalar_result(r, st, interp))

    def _scalar_result(self, r: Any, st: dict[str, Any], interp: Any
                       ) -> tuple[float | None, str | None]:
        """Value and reason of a scalar run that gave ``r``, which is not a finite float."""
        if type(r) is not float:
            if r is None or isinstance(r, (complex, _ndarray)) or not isinstance(
                    r, (int, float, np.number, np.bool_)):
                if interp.error:
                    fallback = _reason_from_error(interp)
                    _reset(interp)
                    return self._explain_one(st, fallback)
                if isinstance(r, complex):
                    return self._explain_one(st, REASON_DOMAIN)
                return None, f"result is not a number: {type(r).__name__}"
            r = float(r)
        if r - r == 0.0:
            return r, None
        return self._explain_one(st, REASON_NOT_FINITE)

    def _explain_one(self, st: Mapping[str, Any], fallback: str
                     ) -> tuple[float | None, str | None]:
        """The fast scalar run failed: the explainer gives the value or the reason."""
        if self._tree is None:  # a hand-built Formula (tests): no checked tree to explain
            return None, fallback
        values = {name: np.array([st[name]], dtype=_float64) for name in self._sorted}
        value, codes, table = explain_codes(self._tree, self._specs, values, 1, self._needed)
        if codes[0]:
            return None, table[codes[0]]
        return float(value[0]), None

    def _evaluate_array(self, namespace: Mapping[str, Any], size: int | None) -> Evaluation:
        value, codes, table = self._array_codes(namespace, size)
        return Evaluation(value, _none_reasons(len(value)) if codes is None
                          else reason_objects(table)[codes])

    def _array_codes(self, namespace: Mapping[str, Any], size: int | None,
                     guarded: bool = True) -> tuple[np.ndarray, np.ndarray | None, list[Any]]:
        """(value, reason codes or None when no slice is null, reasons by code: 0 is None).
        ``guarded=False``: the caller entered ``np.errstate(all="ignore")`` for many formulas."""
        n = size
        values: dict[str, Any] = {}
        any_array = False
        for name in self._sorted:
            v = namespace.get(name)
            if v is None:
                values[name] = _NAN64
            elif isinstance(v, _ndarray) and v.ndim:
                if v.ndim != 1:
                    raise InputError(f"input {name!r} must be one-dimensional, got shape {v.shape}")
                if v.dtype != _float64:
                    v = input_array(name, v)
                if n is None:
                    n = len(v)
                elif len(v) != n:
                    raise InputError(f"input {name!r} has {len(v)} values, expected {n}")
                values[name] = v
                any_array = True
            else:
                if isinstance(v, _ndarray):
                    v = v.item()
                values[name] = _float64(_to_float(name, v))
        if n is None:
            n = next(len(v) for v in namespace.values() if isinstance(v, _ndarray) and v.ndim)
        if not any_array:
            # every slice sees the same inputs: one scalar evaluation, broadcast
            one = self.evaluate({k: float(v) for k, v in values.items()})
            if one.reason is None:
                return np.full(n, one.value), None, [None]
            return np.full(n, _NAN), np.ones(n, dtype=np.int32), [None, one.reason]

        interp = _interpreter()
        if interp.error:
            _reset(interp)
        st = self._array_base.copy()
        st.update(values)
        interp.symtable = st
        node = self._big_node if n >= _INPLACE_FROM else self._array_node
        try:
            if guarded:
                with np.errstate(all="ignore"):
                    r = interp.run(node)
            else:
                r = interp.run(node)
        except Exception:
            _reset(interp)
            return self._evaluate_slices(values, n, None)
        finally:
            interp.symtable = {}
        if type(r) is not _ndarray or r.dtype != _float64:
            try:
                r = np.asarray(r, dtype=_float64)
            except (TypeError, ValueError):
                return self._evaluate_slices(values, n, None)
        if r.shape != (n,):
            if r.ndim == 0:
                r = np.full(n, float(r))
            else:
                try:
                    r = np.broadcast_to(r, (n,)).copy()
                except ValueError:
                    return self._evaluate_slices(values, n, None)
        # no BLAS (all_finite); a sum overflowing on finite values is told apart just below
        with np.errstate(over="ignore", invalid="ignore") if guarded else _UNGUARDED:
            if all_finite(r):
                return r, None, [None]
        bad = ~np.isfinite(r)
        if not bad.any():  # the sum overflowed, every slice is fine
            return r, None, [None]
        if any(r is v for v in values.values()) or not r.flags.writeable:
            r = r.copy()
        return self._evaluate_slices(values, n, r, np.flatnonzero(bad))

    def _evaluate_slices(self, values: Mapping[str, Any], n: int, r: np.ndarray | None,
                         idx: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        """Value and reason codes of the slices ``idx`` (all when None) from the explainer.

        Used for the slices the fast tree left non-finite, and for every slice when the fast
        run raised (a plugin function that rejects arrays, say).
        """
        if r is None:
            r = np.full(n, _NAN)
        if idx is None:
            idx = np.arange(n)
        codes = np.zeros(n, dtype=np.int32)
        if self._tree is None:
            r[idx] = _NAN
            codes[idx] = 1
            return r, codes, [None, REASON_NOT_FINITE]
        sub = {k: (v[idx] if type(v) is _ndarray else v) for k, v in values.items()}
        value, why, table = explain_codes(self._tree, self._specs, sub, len(idx), self._needed)
        r[idx] = value
        codes[idx] = why
        return r, codes, table


# --------------------------------------------------------------------------- compile


def compile_formula(text: str, *, functions: Mapping[str, FunctionSpec]) -> Formula:
    """Check ``text`` against the allow-list and prepare it for evaluation (``total(x)``
    becomes the input ``total(x)``, see ``_totals``). Raises :class:`FormulaError` with
    ``code`` one of ``syntax``, ``forbidden``, ``unknown-function``, ``arity``, ``too-complex``,
    ``total`` and a 1-based ``column``."""
    tree, names, called = check_formula(text, {**functions, "total": TOTAL})
    tree, totals = rewrite_totals(tree, column_of(text))
    names, called = names | {total_key(t) for t in totals}, called - {"total"}
    builtins = frozenset(name for name in called
                         if _is_builtin(name, functions[name].func))
    scalar = ast.fix_missing_locations(_lower(tree, array=False, builtins=builtins))
    array = ast.fix_missing_locations(_lower(tree, array=True, builtins=builtins))
    big = ast.fix_missing_locations(_lower(tree, array=True, inplace=True,
                                           builtins=builtins))
    return Formula(text, names, called, scalar, array, big, functions, tree)
