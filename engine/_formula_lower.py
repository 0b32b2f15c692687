"""Lowering: a checked formula tree rebuilt for each evaluation mode, as the trees asteval runs.

Three lowered trees are kept per formula (see ``_formulas``): the scalar tree keeps
``if``/``and``/``or`` lazy and uses Python floats; the array trees (plain, and in-place for big
arrays) rewrite those constructs into elementwise internal calls so one run covers every slice.
"""

from __future__ import annotations

import ast
from typing import Any, Callable, Sequence, cast

import numpy as np

from . import _guards
from ._reasons import builtin

_ndarray = np.ndarray
_float64 = np.float64


# --------------------------------------------------------------------------- internal functions
# Names start with "_" so user formulas can never call them: the allow-list rejects such names.
# The guards against laundered poison are in ``_guards``; these are array mode's operators.


def _reuse_left(ufunc: np.ufunc) -> Callable[[Any, Any], Any]:
    def op(a: Any, b: Any) -> Any:
        if type(a) is _ndarray and a.dtype == _float64 and a.ndim == 1:
            return ufunc(a, b, out=a)
        return ufunc(a, b)
    return op


def _reuse_right(ufunc: np.ufunc) -> Callable[[Any, Any], Any]:
    def op(a: Any, b: Any) -> Any:
        if type(b) is _ndarray and b.dtype == _float64 and b.ndim == 1:
            return ufunc(a, b, out=b)
        return ufunc(a, b)
    return op


_UFUNCS = {ast.Add: ("add", np.add), ast.Sub: ("sub", np.subtract), ast.Mult: ("mul", np.multiply),
           ast.Div: ("div", np.divide), ast.FloorDiv: ("floordiv", np.floor_divide),
           ast.Mod: ("mod", np.remainder), ast.Pow: ("pow", np.power)}

_SCALAR_INTERNALS = dict(_guards.SCALAR)
_ARRAY_INTERNALS = dict(_guards.ARRAY)
for _op_name, _ufunc in _UFUNCS.values():
    _ARRAY_INTERNALS[f"_{_op_name}_l"] = _reuse_left(_ufunc)
    _ARRAY_INTERNALS[f"_{_op_name}_r"] = _reuse_right(_ufunc)


# --------------------------------------------------------------------------- lowering


def _call(name: str, args: Sequence[ast.expr], like: ast.AST) -> ast.Call:
    return ast.copy_location(ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args),
                                      keywords=[]), like)


def _lower(node: ast.AST, array: bool, inplace: bool = False,
           builtins: frozenset[str] = frozenset()) -> ast.expr:
    """Rebuild a checked tree for one evaluation mode (see the module docstring).

    ``builtins`` are the called names bound to the built-in functions: ``where`` becomes a
    lazy choice, ``coalesce`` and ``safe_div`` handle poison themselves, the others get guards
    only where they could launder one (see ``_guards``).
    """

    def low(n: ast.AST) -> ast.expr:
        return _lower(n, array, inplace, builtins)

    def fin(original: ast.AST, lowered: ast.expr) -> ast.expr:
        # infinity guard, for operands where an infinity would vanish (x / inf is 0)
        if _guards.may_be_infinite(original, builtins):
            return _call("_fin", [lowered], original)
        return lowered

    def chk(original: ast.AST, lowered: ast.expr) -> ast.expr:
        # scalar mode, operands of a truth test or comparison: NaN must not read as a number
        if array or type(lowered) is ast.Constant or _guards.finite_or_raises(lowered):
            return lowered
        return _call("_chk", [lowered], original)

    if type(node) is ast.Constant:
        value = float(cast(float, node.value))  # the checker lets numbers only through
        return ast.copy_location(ast.Constant(value=_float64(value) if array else value), node)
    if type(node) is ast.Name:
        return ast.copy_location(ast.Name(id=node.id, ctx=ast.Load()), node)
    if type(node) is ast.BinOp:
        left = low(node.left)
        right = low(node.right)
        if type(node.op) in (ast.Div, ast.FloorDiv, ast.Mod):
            right = fin(node.right, right)
        if inplace:
            # Every arithmetic result is a fresh temporary that nothing else refers to; writing
            # the next operation into it saves an allocation (and its page faults) per operator:
            # what numpy's temporary elision does for hand-written code, which asteval's
            # operator calls never qualify for. It pays off only for big arrays: a call node
            # costs asteval about twice a BinOp node.
            op_name = _UFUNCS[type(node.op)][0]
            if type(node.op) is not ast.Pow:
                if _is_temporary(left):
                    return _call(f"_{op_name}_l", [left, right], node)
                if _is_temporary(right):
                    return _call(f"_{op_name}_r", [left, right], node)
        if type(node.op) is ast.Pow:
            return _call("_pow", [left, right], node)
        return ast.copy_location(ast.BinOp(left=left, op=node.op, right=right), node)
    if type(node) is ast.UnaryOp:
        operand = low(node.operand)
        op = node.op
        if type(op) is ast.Not:
            if array:
                return _call("_not", [operand], node)
            return ast.copy_location(ast.UnaryOp(op=op, operand=chk(node.operand, operand)),
                                     node)
        if type(operand) is ast.Constant:  # fold -1 so constants cost one node
            folded = cast(float, operand.value)  # lowered above: a float or a float64
            return ast.copy_location(ast.Constant(value=-folded if type(op) is ast.USub
                                                  else +folded), node)
        return ast.copy_location(ast.UnaryOp(op=op, operand=operand), node)
    if type(node) is ast.BoolOp:
        values = [low(v) for v in node.values]
        if array:
            return _call("_and" if type(node.op) is ast.And else "_or", values, node)
        values = [chk(o, v) for o, v in zip(node.values, values)]
        return _call("_truth", [ast.copy_location(ast.BoolOp(op=node.op, values=values), node)],
                     node)
    if type(node) is ast.Compare:
        originals = [node.left, *node.comparators]
        operands = [low(o) for o in originals]
        ops = node.ops
        if not array:
            operands = [chk(o, v) for o, v in zip(originals, operands)]
            return ast.copy_location(ast.Compare(left=operands[0], ops=ops,
                                                 comparators=operands[1:]), node)
        pairs = [_call(_guards.comparison_name(op), [lhs, rhs], node)
                 for op, lhs, rhs in zip(ops, operands, operands[1:])]
        return pairs[0] if len(pairs) == 1 else _call("_and", pairs, node)
    if type(node) is ast.IfExp:
        return _choice(node, node.test, node.body, node.orelse, array, low, chk)
    if type(node) is ast.Call:
        name = cast(ast.Name, node.func).id
        args = [low(a) for a in node.args]
        if name not in builtins:
            # a plugin's function never sees a poisoned argument: the result is poisoned
            func = ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node)
            return _call("_pcall", [func, *args], node)
        if name == "where":
            test, body, orelse = node.args
            return _choice(node, test, body, orelse, array, low, chk)
        if name in ("min", "max", "clip", "exp"):
            args = [fin(o, v) for o, v in zip(node.args, args)]
        elif name == "log" and len(args) == 2:
            args[1] = fin(node.args[1], args[1])
        return _call(name, args, node)
    raise AssertionError(f"unchecked node {type(node).__name__}")  # the checker admits nothing else


def _choice(node: ast.AST, test: ast.AST, body: ast.AST, orelse: ast.AST, array: bool,
            low: Callable[[ast.AST], ast.expr],
            chk: Callable[[ast.AST, ast.expr], ast.expr]) -> ast.expr:
    # ``a if c else b`` and ``where(c, a, b)`` are one construct: the branch not chosen
    # never poisons (scalar mode does not evaluate it; array mode computes and drops it)
    t, a, b = low(test), low(body), low(orelse)
    if array:
        return _call("_where", [t, a, b], node)
    return ast.copy_location(ast.IfExp(test=chk(test, t), body=a, orelse=b), node)


def _is_temporary(node: ast.expr) -> bool:
    """True if the lowered array-mode node yields a new float array no one else holds.

    Arithmetic on float operands always allocates; comparisons and plugin calls do not
    qualify (bool dtype; a function may hand back its argument). The in-place helpers still
    check dtype at run time, since ``(a > b) + (c > d)`` adds booleans.
    """
    if type(node) is ast.BinOp:
        return True
    if type(node) is ast.UnaryOp and type(node.op) in (ast.USub, ast.UAdd):
        return type(node.operand) is not ast.Constant
    if type(node) is ast.Call:
        name = cast(ast.Name, node.func).id
        return name == "_pow" or name.endswith(("_l", "_r")) and name.startswith("_")
    return False


def _internal_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if type(n) is ast.Name and n.id.startswith("_")}


def _is_builtin(name: str, func: Any) -> bool:
    try:
        return func is builtin(name)
    except KeyError:
        return False
