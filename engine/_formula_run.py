"""Evaluating a compiled :class:`~._formulas.Formula`: the numpy and asteval half of formulas.

Apart from :mod:`._formulas` so that compiling (what ``kpiforge validate`` does to every
formula: the allow-list check, ``total()``, the names) imports neither numpy nor asteval: a
Formula is lowered (see ``_formula_lower``) and given its symbol tables on its first
evaluation, by :func:`prepare`. The rules a formula follows are in :mod:`._formulas`.
"""

from __future__ import annotations

import ast
import contextlib
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ._evaluation import Evaluation, _evaluation
from ._explain import explain_codes
from ._formula_interp import _interpreter, _reason_from_error, _reset
from ._formula_lower import _ARRAY_INTERNALS, _SCALAR_INTERNALS, _internal_names, _is_builtin, _lower
from ._guards import all_finite
from ._inputs import input_array, input_number
from ._reasons import REASON_DOMAIN, REASON_NOT_FINITE, missing_input, reason_objects
from .errors import InputError

if TYPE_CHECKING:
    from ._formulas import Formula

__all__ = ["array_codes", "evaluate", "prepare"]

_INPLACE_FROM = 65_536  # slices from which array mode reuses temporaries (see _formula_lower)

_NAN = float("nan")
_NAN64 = np.float64("nan")
_ndarray = np.ndarray
_float64 = np.float64
_UNGUARDED = contextlib.nullcontext()
_ABSENT: Any = object()  # not in the namespace (None is in it, and missing)
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


def prepare(f: Formula) -> Formula:
    """Give ``f`` its lowered trees (unless it was built with them) and the symbol tables they
    start from; returns ``f``. Two threads preparing one formula at once set equal values."""
    if getattr(f, "_scalar_node", None) is None:
        tree = f._tree
        assert tree is not None  # compile_formula keeps it; a hand-built Formula has nodes
        specs = f._specs
        builtins = frozenset(name for name in f.functions if _is_builtin(name, specs[name].func))
        nodes = [ast.fix_missing_locations(_lower(tree, array=False, builtins=builtins)),
                 ast.fix_missing_locations(_lower(tree, array=True, builtins=builtins)),
                 ast.fix_missing_locations(_lower(tree, array=True, inplace=True,
                                                  builtins=builtins))]
    else:
        nodes = [f._scalar_node, f._array_node, f._big_node]
    scalar_node, array_node, big_node = nodes
    user = {name: spec.func for name, spec in f._specs.items()}
    scalar_base = dict(user)
    scalar_base.update({k: _SCALAR_INTERNALS[k] for k in _internal_names(scalar_node)})
    array_base = dict(user)
    array_base.update({k: _ARRAY_INTERNALS[k] for k in
                       _internal_names(array_node) | _internal_names(big_node)})
    # the bases last: evaluate() takes a set _scalar_base for a prepared formula
    for attr, value in (("_scalar_node", scalar_node), ("_array_node", array_node),
                        ("_big_node", big_node), ("_array_base", array_base),
                        ("_scalar_base", scalar_base)):
        object.__setattr__(f, attr, value)
    return f


def evaluate(f: Formula, namespace: Mapping[str, Any], size: int | None = None) -> Evaluation:
    """Evaluate on scalars (``size is None`` and no ndarray values) or on arrays.

    Names absent from ``namespace`` and None values are missing (NaN). Data problems give
    a null value with a reason; only programming errors (text, complex numbers or dates
    as inputs, arrays of unequal length) raise :class:`InputError`.
    """
    if size is not None:
        return _evaluate_array(f, namespace, size)
    try:
        st = f._scalar_base.copy()
    except AttributeError:  # compiled, never evaluated yet
        st = prepare(f)._scalar_base.copy()
    get = namespace.get
    missing = False
    seen = 0  # the namespace's names this loop checked: when all of them, no scan below
    for name in f._sorted:
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
                return _evaluate_array(f, namespace, None)
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
        return _evaluate_array(f, namespace, None)
    if missing:  # the first missing input the formula always needs: no need to run
        for name in f._needed:
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
        r = interp.run(f._scalar_node)
    except Exception:
        fallback = _reason_from_error(interp)
        _reset(interp)
        interp.symtable = {}
        return _evaluation(*_explain_one(f, st, fallback))
    interp.symtable = {}  # do not keep inputs alive between evaluations
    if type(r) is float and r - r == 0.0:
        return _evaluation(r, None)
    return _evaluation(*_scalar_result(f, r, st, interp))

def _scalar_result(f: Formula, r: Any, st: dict[str, Any], interp: Any
                   ) -> tuple[float | None, str | None]:
    """Value and reason of a scalar run that gave ``r``, which is not a finite float."""
    if type(r) is not float:
        if r is None or isinstance(r, (complex, _ndarray)) or not isinstance(
                r, (int, float, np.number, np.bool_)):
            if interp.error:
                fallback = _reason_from_error(interp)
                _reset(interp)
                return _explain_one(f, st, fallback)
            if isinstance(r, complex):
                return _explain_one(f, st, REASON_DOMAIN)
            return None, f"result is not a number: {type(r).__name__}"
        r = float(r)
    if r - r == 0.0:
        return r, None
    return _explain_one(f, st, REASON_NOT_FINITE)

def _explain_one(f: Formula, st: Mapping[str, Any], fallback: str
                 ) -> tuple[float | None, str | None]:
    """The fast scalar run failed: the explainer gives the value or the reason."""
    if f._tree is None:  # a hand-built Formula (tests): no checked tree to explain
        return None, fallback
    values = {name: np.array([st[name]], dtype=_float64) for name in f._sorted}
    value, codes, table = explain_codes(f._tree, f._specs, values, 1, f._needed)
    if codes[0]:
        return None, table[codes[0]]
    return float(value[0]), None

def _evaluate_array(f: Formula, namespace: Mapping[str, Any], size: int | None) -> Evaluation:
    value, codes, table = array_codes(f, namespace, size)
    return Evaluation(value, _none_reasons(len(value)) if codes is None
                      else reason_objects(table)[codes])

def array_codes(f: Formula, namespace: Mapping[str, Any], size: int | None,
                 guarded: bool = True) -> tuple[np.ndarray, np.ndarray | None, list[Any]]:
    """(value, reason codes or None when no slice is null, reasons by code: 0 is None).
    ``guarded=False``: the caller entered ``np.errstate(all="ignore")`` for many formulas."""
    n = size
    values: dict[str, Any] = {}
    any_array = False
    for name in f._sorted:
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
        one = evaluate(f, {k: float(v) for k, v in values.items()})
        if one.reason is None:
            return np.full(n, one.value), None, [None]
        return np.full(n, _NAN), np.ones(n, dtype=np.int32), [None, one.reason]

    interp = _interpreter()
    if interp.error:
        _reset(interp)
    try:
        st = f._array_base.copy()
    except AttributeError:
        st = prepare(f)._array_base.copy()
    st.update(values)
    interp.symtable = st
    node = f._big_node if n >= _INPLACE_FROM else f._array_node
    try:
        if guarded:
            with np.errstate(all="ignore"):
                r = interp.run(node)
        else:
            r = interp.run(node)
    except Exception:
        _reset(interp)
        return _evaluate_slices(f, values, n, None)
    finally:
        interp.symtable = {}
    if type(r) is not _ndarray or r.dtype != _float64:
        try:
            r = np.asarray(r, dtype=_float64)
        except (TypeError, ValueError):
            return _evaluate_slices(f, values, n, None)
    if r.shape != (n,):
        if r.ndim == 0:
            r = np.full(n, float(r))
        else:
            try:
                r = np.broadcast_to(r, (n,)).copy()
            except ValueError:
                return _evaluate_slices(f, values, n, None)
    # no BLAS (all_finite); a sum overflowing on finite values is told apart just below
    with np.errstate(over="ignore", invalid="ignore") if guarded else _UNGUARDED:
        if all_finite(r):
            return r, None, [None]
    bad = ~np.isfinite(r)
    if not bad.any():  # the sum overflowed, every slice is fine
        return r, None, [None]
    if any(r is v for v in values.values()) or not r.flags.writeable:
        r = r.copy()
    return _evaluate_slices(f, values, n, r, np.flatnonzero(bad))

def _evaluate_slices(f: Formula, values: Mapping[str, Any], n: int, r: np.ndarray | None,
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
    if f._tree is None:
        r[idx] = _NAN
        codes[idx] = 1
        return r, codes, [None, REASON_NOT_FINITE]
    sub = {k: (v[idx] if type(v) is _ndarray else v) for k, v in values.items()}
    value, why, table = explain_codes(f._tree, f._specs, sub, len(idx), f._needed)
    r[idx] = value
    codes[idx] = why
    return r, codes, table
