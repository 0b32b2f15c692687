"""Compile and evaluate KPI formulas: the one place asteval is configured.

Formulas come from YAML files and are untrusted. Two independent layers keep them contained:

1. Our own AST allow-list, checked at compile time (:func:`compile_formula`): numbers, names,
   arithmetic, comparisons, ``and``/``or``/``not``, ``a if c else b`` and positional calls to
   registered functions. Everything else is rejected with a :class:`FormulaError` that names
   the construct and its column, before anything runs.
2. asteval in its minimal configuration with every node handler we do not emit switched off,
   run against a symbol table that holds *only* the functions the formula calls and its inputs
   (asteval's own table has ``open``, ``loadtxt``, ``fromfile``, ``print`` ... even with
   ``minimal=True``; we never use it).

asteval traps handled here (each has a test in ``tests/test_formulas.py``):

* an Interpreter keeps symbols between runs, so a missing input would silently take the
  previous value: every evaluation gets a fresh symbol table;
* after one error ``run()`` returns None forever: the error state is reset after a failure;
* ``eval(node, raise_errors=True)`` raises AttributeError instead of the real error, and
  ``eval`` appends to ``code_text`` on every call (a leak): we only call ``run(node)``, which
  does neither;
* an Interpreter is not thread-safe: one per thread (``threading.local``);
* with numpy installed results are ``numpy.float64``: scalar results are converted to ``float``.

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
into a number. Every slice that failed is then evaluated again by ``_explain.explain`` --
vectorised over the failed slices, for scalars and arrays alike -- which implements the rule
above exactly and gives the value (a handler may rescue it) or the reason. Scalar and array
evaluation therefore agree on value and reason by construction
(``tests/test_formulas_properties.py`` checks it on random formulas).
"""

from __future__ import annotations

import ast
import difflib
import math
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from asteval import Interpreter

from . import _guards
from ._explain import (
    REASON_DOMAIN,
    REASON_NOT_FINITE,
    always_needed,
    builtin,
    explain,
    reason_of,
)
from ._inputs import input_array, input_number
from .errors import FormulaError, InputError

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

MAX_FORMULA_LENGTH = 4_000
MAX_NODES = 1_000  # counted like ast.walk, i.e. including operator and context nodes
MAX_DEPTH = 100  # keeps asteval's recursive run() far away from the recursion limit
_INPLACE_FROM = 65_536  # slices from which array mode reuses temporaries (see _lower)

_NAN = float("nan")
_NAN64 = np.float64("nan")
_ndarray = np.ndarray
_float64 = np.float64


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function formulas may call; ``max_args=None`` means variadic."""

    name: str
    func: Callable[..., Any]
    min_args: int = 0
    max_args: int | None = None
    doc: str = ""


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

# --------------------------------------------------------------------------- the allow-list

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
           ast.Mod: "%", ast.Pow: "**"}
_BAD_BINOPS = {ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
               ast.BitAnd: "&", ast.BitXor: "^"}
_CMPOPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_BAD_CMPOPS = {ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}

# Constructs we name in messages; anything not listed is reported by its AST class name.
_FORBIDDEN = {
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "subscripts and indexing are not allowed",
    ast.Slice: "slices are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.Starred: "starred arguments (*args) are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}

_STATEMENTS = {
    ast.Assign: "assignment is not allowed",
    ast.AugAssign: "assignment is not allowed",
    ast.AnnAssign: "assignment is not allowed",
    ast.Import: "import is not allowed",
    ast.ImportFrom: "import is not allowed",
    ast.While: "loops are not allowed",
    ast.For: "loops are not allowed",
    ast.AsyncFor: "loops are not allowed",
    ast.FunctionDef: "function definitions are not allowed",
    ast.AsyncFunctionDef: "function definitions are not allowed",
    ast.ClassDef: "class definitions are not allowed",
    ast.Raise: "raise is not allowed",
    ast.Return: "return is not allowed",
    ast.Delete: "del is not allowed",
    ast.Global: "global is not allowed",
    ast.Nonlocal: "nonlocal is not allowed",
    ast.If: "if statements are not allowed (use 'a if c else b' or where(c, a, b))",
    ast.With: "with statements are not allowed",
    ast.AsyncWith: "with statements are not allowed",
    ast.Try: "try statements are not allowed",
    ast.Assert: "assert is not allowed",
    ast.Pass: "pass is not allowed",
    ast.Break: "break is not allowed",
    ast.Continue: "continue is not allowed",
}


class _Source:
    """Maps AST positions (line + UTF-8 byte column) to 1-based character columns of the text."""

    def __init__(self, text: str, lead: int):
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.lead = lead

    def column(self, lineno: int | None, col_bytes: int | None) -> int:
        if not lineno or col_bytes is None or lineno > len(self.lines):
            return 0
        line = self.lines[lineno - 1]
        chars = len(line.encode("utf-8")[:col_bytes].decode("utf-8", errors="replace"))
        return self.lead + self.starts[lineno - 1] + chars + 1

    def char_column(self, lineno: int | None, offset: int | None) -> int:
        if not lineno or not offset or lineno > len(self.lines):
            return 0
        return self.lead + self.starts[lineno - 1] + offset


class _Checker:
    """Walks a parsed formula, raising FormulaError at the first construct not allowed."""

    def __init__(self, source: _Source, functions: Mapping[str, FunctionSpec]):
        self.source = source
        self.functions = functions
        self.names: set[str] = set()
        self.called: set[str] = set()

    def fail(self, node: ast.AST, message: str, code: str = "forbidden") -> FormulaError:
        if type(node) is ast.Attribute:
            # an Attribute node starts where its object starts; point at the ``.name`` instead
            attr = node.attr  # type: ignore[attr-defined]
            message = f"{message} ('.{attr}')"
            column = self.source.column(node.end_lineno,
                                        (node.end_col_offset or 0) - len(attr.encode()) - 1)
        else:
            column = self.source.column(getattr(node, "lineno", None),
                                        getattr(node, "col_offset", None))
        return FormulaError(message, column=column, code=code)

    def check(self, node: ast.AST) -> None:
        kind = type(node)
        if kind is ast.Constant:
            self.check_constant(node)  # type: ignore[arg-type]
        elif kind is ast.Name:
            self.check_name(node)  # type: ignore[arg-type]
        elif kind is ast.BinOp:
            op = type(node.op)  # type: ignore[attr-defined]
            if op not in _BINOPS:
                raise self.fail(node, f"operator {_BAD_BINOPS.get(op, op.__name__)!r} is not allowed")
            self.check(node.left)  # type: ignore[attr-defined]
            self.check(node.right)  # type: ignore[attr-defined]
        elif kind is ast.UnaryOp:
            op = type(node.op)  # type: ignore[attr-defined]
            if op is ast.Invert:
                raise self.fail(node, "operator '~' is not allowed")
            self.check(node.operand)  # type: ignore[attr-defined]
        elif kind is ast.BoolOp:
            for value in node.values:  # type: ignore[attr-defined]
                self.check(value)
        elif kind is ast.Compare:
            for op in node.ops:  # type: ignore[attr-defined]
                if type(op) not in _CMPOPS:
                    name = _BAD_CMPOPS.get(type(op), type(op).__name__)
                    raise self.fail(node, f"comparison operator {name!r} is not allowed")
            self.check(node.left)  # type: ignore[attr-defined]
            for value in node.comparators:  # type: ignore[attr-defined]
                self.check(value)
        elif kind is ast.IfExp:
            self.check(node.test)  # type: ignore[attr-defined]
            self.check(node.body)  # type: ignore[attr-defined]
            self.check(node.orelse)  # type: ignore[attr-defined]
        elif kind is ast.Call:
            self.check_call(node)  # type: ignore[arg-type]
        elif kind in _FORBIDDEN:
            raise self.fail(node, _FORBIDDEN[kind])
        elif kind in _STATEMENTS:
            raise self.fail(node, _STATEMENTS[kind])
        else:
            raise self.fail(node, f"{kind.__name__} is not allowed in a formula")

    def check_constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            raise self.fail(node, "True/False are not allowed; use 1 and 0")
        if isinstance(value, (str, bytes)):
            raise self.fail(node, "strings are not allowed")
        if isinstance(value, complex):
            raise self.fail(node, "complex numbers are not allowed")
        if not isinstance(value, (int, float)):
            raise self.fail(node, f"constant {value!r} is not allowed; only numbers are")
        try:
            float(value)
        except OverflowError:
            raise self.fail(node, "numeric constant is too large") from None

    def check_name(self, node: ast.Name) -> None:
        name = node.id
        if name.startswith("_"):
            raise self.fail(node, f"names starting with '_' are not allowed ({name!r})")
        if name in self.functions:
            raise self.fail(node, f"function {name!r} must be called, it cannot be used as a value")
        self.names.add(name)

    def check_call(self, node: ast.Call) -> None:
        func = node.func
        if type(func) is not ast.Name:
            # report what the callee is (attribute access, a call result, ...) when we can
            if type(func) in _FORBIDDEN:
                raise self.fail(func, _FORBIDDEN[type(func)])
            self.check(func)
            raise self.fail(node, "only registered functions can be called")
        name = func.id
        if name.startswith("_"):
            raise self.fail(func, f"names starting with '_' are not allowed ({name!r})")
        spec = self.functions.get(name)
        if spec is None:
            hint = difflib.get_close_matches(name, list(self.functions), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise self.fail(func, f"unknown function {name!r}{extra}", "unknown-function")
        for kw in node.keywords:
            what = f"{kw.arg}=" if kw.arg else "**"
            raise self.fail(kw, f"keyword arguments are not allowed ({what} in {name}())")
        for arg in node.args:
            if type(arg) is ast.Starred:
                raise self.fail(arg, _FORBIDDEN[ast.Starred])
        count = len(node.args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            if spec.max_args is None:
                expected = f"at least {spec.min_args}"
            elif spec.max_args == spec.min_args:
                expected = f"exactly {spec.min_args}"
            else:
                expected = f"{spec.min_args} to {spec.max_args}"
            plural = "" if expected.endswith(" 1") else "s"
            raise self.fail(node, f"{name}() takes {expected} argument{plural} ({count} given)",
                            "arity")
        self.called.add(name)
        for arg in node.args:
            self.check(arg)


def _measure(root: ast.AST, source: _Source) -> None:
    # iterative, so a hostile formula cannot exhaust the stack before it is refused
    stack: list[tuple[ast.AST, int, ast.AST]] = [(root, 1, root)]
    count = 0
    while stack:
        node, depth, located = stack.pop()
        if hasattr(node, "col_offset"):  # operator and context nodes have no position
            located = node
        count += 1
        if count > MAX_NODES or depth > MAX_DEPTH:
            what = f"more than {MAX_NODES} nodes" if count > MAX_NODES else \
                f"nested more than {MAX_DEPTH} levels deep"
            column = source.column(located.lineno, located.col_offset)  # type: ignore[attr-defined]
            raise FormulaError(f"formula is too complex ({what})", column=column,
                               code="too-complex")
        stack.extend((child, depth + 1, located) for child in ast.iter_child_nodes(node))


def _explain_syntax_error(text: str, exc: SyntaxError, source: _Source) -> FormulaError:
    """Turn a failed expression parse into a message that names the offending construct."""
    try:
        module = ast.parse(text, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        module = None
    if module is not None and module.body:
        checker = _Checker(source, {})
        for stmt in module.body:
            if type(stmt) is not ast.Expr:
                message = _STATEMENTS.get(type(stmt), f"{type(stmt).__name__} is not allowed")
                return checker.fail(stmt, f"{message}; a formula is a single expression")
        if len(module.body) > 1:
            return checker.fail(module.body[1], "a formula is a single expression; found "
                                f"{len(module.body)} statements (';' or a new line)")
        # e.g. a bare ``yield``: valid only as a statement
        try:
            checker.check(module.body[0].value)
        except FormulaError as err:
            return err
    msg = exc.msg or "invalid syntax"
    column = source.char_column(exc.lineno, exc.offset)
    if not column:  # e.g. NUL bytes are refused before tokenizing, without a position
        column = (text.find("\x00") + 1 or 1) + source.lead
    if "too many nested parentheses" in msg:
        return FormulaError(f"formula is too complex ({msg})", column=column, code="too-complex")
    return FormulaError(f"syntax error: {msg}", column=column, code="syntax")


# --------------------------------------------------------------------------- lowering


def _call(name: str, args: list[ast.expr], like: ast.AST) -> ast.Call:
    return ast.copy_location(ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args,
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

    kind = type(node)
    if kind is ast.Constant:
        value = float(node.value)  # type: ignore[attr-defined]
        return ast.copy_location(ast.Constant(value=_float64(value) if array else value), node)
    if kind is ast.Name:
        return ast.copy_location(ast.Name(id=node.id, ctx=ast.Load()), node)  # type: ignore
    if kind is ast.BinOp:
        left = low(node.left)  # type: ignore[attr-defined]
        right = low(node.right)  # type: ignore[attr-defined]
        if type(node.op) in (ast.Div, ast.FloorDiv, ast.Mod):  # type: ignore[attr-defined]
            right = fin(node.right, right)  # type: ignore[attr-defined]
        if inplace:
            # Every arithmetic result is a fresh temporary that nothing else refers to; writing
            # the next operation into it saves an allocation (and its page faults) per operator:
            # what numpy's temporary elision does for hand-written code, which asteval's
            # operator calls never qualify for. It pays off only for big arrays: a call node
            # costs asteval about twice a BinOp node.
            op_name = _UFUNCS[type(node.op)][0]  # type: ignore[attr-defined]
            if type(node.op) is not ast.Pow:  # type: ignore[attr-defined]
                if _is_temporary(left):
                    return _call(f"_{op_name}_l", [left, right], node)
                if _is_temporary(right):
                    return _call(f"_{op_name}_r", [left, right], node)
        if type(node.op) is ast.Pow:  # type: ignore[attr-defined]
            return _call("_pow", [left, right], node)
        return ast.copy_location(ast.BinOp(left=left, op=node.op, right=right), node)  # type: ignore
    if kind is ast.UnaryOp:
        operand = low(node.operand)  # type: ignore[attr-defined]
        op = node.op  # type: ignore[attr-defined]
        if type(op) is ast.Not:
            if array:
                return _call("_not", [operand], node)
            return ast.copy_location(ast.UnaryOp(op=op, operand=chk(node.operand, operand)),  # type: ignore[attr-defined]
                                     node)
        if type(operand) is ast.Constant:  # fold -1 so constants cost one node
            value = operand.value
            return ast.copy_location(ast.Constant(value=-value if type(op) is ast.USub
                                                  else +value), node)
        return ast.copy_location(ast.UnaryOp(op=op, operand=operand), node)
    if kind is ast.BoolOp:
        values = [low(v) for v in node.values]  # type: ignore[attr-defined]
        if array:
            return _call("_and" if type(node.op) is ast.And else "_or", values, node)  # type: ignore
        values = [chk(o, v) for o, v in zip(node.values, values)]  # type: ignore[attr-defined]
        return _call("_truth", [ast.copy_location(ast.BoolOp(op=node.op, values=values), node)],  # type: ignore
                     node)
    if kind is ast.Compare:
        originals = [node.left, *node.comparators]  # type: ignore[attr-defined]
        operands = [low(o) for o in originals]
        ops = node.ops  # type: ignore[attr-defined]
        if not array:
            operands = [chk(o, v) for o, v in zip(originals, operands)]
            return ast.copy_location(ast.Compare(left=operands[0], ops=ops,
                                                 comparators=operands[1:]), node)
        pairs = [_call(_guards.comparison_name(op), [lhs, rhs], node)
                 for op, lhs, rhs in zip(ops, operands, operands[1:])]
        return pairs[0] if len(pairs) == 1 else _call("_and", pairs, node)
    if kind is ast.IfExp:
        return _choice(node, node.test, node.body, node.orelse, array, low, chk)  # type: ignore[attr-defined]
    if kind is ast.Call:
        name = node.func.id  # type: ignore[attr-defined]
        args = [low(a) for a in node.args]  # type: ignore[attr-defined]
        if name not in builtins:
            # a plugin's function never sees a poisoned argument: the result is poisoned
            func = ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node)
            return _call("_pcall", [func, *args], node)
        if name == "where":
            return _choice(node, *node.args, array=array, low=low, chk=chk)  # type: ignore[attr-defined]
        if name in ("min", "max", "clip", "exp"):
            args = [fin(o, v) for o, v in zip(node.args, args)]  # type: ignore[attr-defined]
        elif name == "log" and len(args) == 2:
            args[1] = fin(node.args[1], args[1])  # type: ignore[attr-defined]
        return _call(name, args, node)
    raise AssertionError(f"unchecked node {kind.__name__}")  # the checker admits nothing else


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
        name = node.func.id  # type: ignore[attr-defined]
        return name == "_pow" or name.endswith(("_l", "_r")) and name.startswith("_")
    return False


def _internal_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if type(n) is ast.Name and n.id.startswith("_")}


# --------------------------------------------------------------------------- the interpreter

# Only the handlers our lowered trees need; asteval refuses every other node on its own, a
# second line of defence behind the allow-list.
_ASTEVAL_NODES = {"binop", "unaryop", "boolop", "compare", "ifexp", "call", "name", "constant"}


class _NullWriter:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


_local = threading.local()


def _new_interpreter() -> Interpreter:
    from asteval.asteval import ALL_NODES

    config = {node: node in _ASTEVAL_NODES for node in ALL_NODES}
    interp = Interpreter(symtable={}, minimal=True, use_numpy=False, config=config,
                         writer=_NullWriter(), err_writer=_NullWriter())
    # run() only records (and raises) errors while expr is set; without it a failing node
    # silently yields None and the reason is lost
    interp.expr = "<formula>"
    interp.symtable = {}  # drop the 'print' asteval adds even to a table we pass in
    return interp


def _interpreter() -> Interpreter:
    try:
        return _local.interp
    except AttributeError:
        interp = _local.interp = _new_interpreter()
        return interp


def _reset(interp: Interpreter) -> None:
    interp.error = []
    interp.error_msg = None
    interp._interrupt = None
    interp.retval = None


def _reason_from_error(interp: Interpreter) -> str:
    exc = None
    for holder in interp.error:
        exc = holder.exc_info[1]
        if exc is not None:
            break
    return reason_of(exc)


def _to_float(name: str, value: Any) -> float:
    return input_number(name, value)


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
        if size is None:
            st = self._scalar_base.copy()
            get = namespace.get
            missing = False
            for name in self._sorted:
                v = get(name)
                t = type(v)
                if t is float:
                    st[name] = v
                    if v != v:
                        missing = True
                elif v is None:
                    st[name] = _NAN
                    missing = True
                elif t is _ndarray:
                    if v.ndim:
                        return self._evaluate_array(namespace, None)
                    st[name] = v = _to_float(name, v.item())
                    missing = missing or v != v
                else:
                    st[name] = v = _to_float(name, v)
                    missing = missing or v != v
            if _ndarray in map(type, namespace.values()):
                return self._evaluate_array(namespace, None)
            if missing:  # the first missing input the formula always needs: no need to run
                for name in self._needed:
                    v = st[name]
                    if v != v:
                        return Evaluation(None, f"missing input: {name}")
            value, reason = self._run_scalar(st)
            return Evaluation(value, reason)
        return self._evaluate_array(namespace, size)

    def _run_scalar(self, st: dict[str, Any]) -> tuple[float | None, str | None]:
        interp = _interpreter()
        if interp.error:
            _reset(interp)
        interp.symtable = st
        try:
            r = interp.run(self._scalar_node)
        except Exception:
            fallback = _reason_from_error(interp)
            _reset(interp)
            return self._explain_one(st, fallback)
        finally:
            interp.symtable = {}  # do not keep inputs alive between evaluations
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
        value, reason = explain(self._tree, self._specs, values, 1, self._needed)
        if reason[0] is not None:
            return None, reason[0]
        return float(value[0]), None

    def _evaluate_array(self, namespace: Mapping[str, Any], size: int | None) -> Evaluation:
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
                return Evaluation(np.full(n, one.value), _none_reasons(n))
            return Evaluation(np.full(n, _NAN), np.full(n, one.reason, dtype=object))

        interp = _interpreter()
        if interp.error:
            _reset(interp)
        st = self._array_base.copy()
        st.update(values)
        interp.symtable = st
        try:
            with np.errstate(all="ignore"):
                r = interp.run(self._big_node if n >= _INPLACE_FROM else self._array_node)
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
        with np.errstate(over="ignore"):  # huge values overflow the dot: no warning on stderr
            if math.isfinite(r.dot(r)):  # NaN/inf if any slice is non-finite; one cheap pass
                return Evaluation(r, _none_reasons(n))
        bad = ~np.isfinite(r)
        if not bad.any():  # the dot product overflowed, every slice is fine
            return Evaluation(r, _none_reasons(n))
        if any(r is v for v in values.values()) or not r.flags.writeable:
            r = r.copy()
        return self._evaluate_slices(values, n, r, np.flatnonzero(bad))

    def _evaluate_slices(self, values: Mapping[str, Any], n: int, r: np.ndarray | None,
                         idx: np.ndarray | None = None) -> Evaluation:
        """Value and reason of the slices ``idx`` (all when None) from the explainer.

        Used for the slices the fast tree left non-finite, and for every slice when the fast
        run raised (a plugin function that rejects arrays, say).
        """
        if r is None:
            r = np.full(n, _NAN)
            idx = np.arange(n)
        reasons = np.empty(n, dtype=object)
        if self._tree is None:
            r[idx] = _NAN
            reasons[idx] = REASON_NOT_FINITE
            return Evaluation(r, reasons)
        sub = {k: (v[idx] if type(v) is _ndarray else v) for k, v in values.items()}
        value, why = explain(self._tree, self._specs, sub, len(idx), self._needed)
        r[idx] = value
        reasons[idx] = why
        return Evaluation(r, reasons)


# --------------------------------------------------------------------------- compile


def compile_formula(text: str, *, functions: Mapping[str, FunctionSpec]) -> Formula:
    """Check ``text`` against the allow-list and prepare it for evaluation.

    Raises :class:`FormulaError` with ``code`` one of ``syntax``, ``forbidden``,
    ``unknown-function``, ``arity``, ``too-complex`` and a 1-based ``column``.
    """
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be text, not {type(text).__name__}", code="syntax")
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"formula is too long ({len(text)} characters, at most "
                           f"{MAX_FORMULA_LENGTH})", column=MAX_FORMULA_LENGTH + 1,
                           code="too-complex")
    body = text.lstrip()  # a leading space would be an IndentationError
    source = _Source(body, len(text) - len(body))
    if not body.strip():
        raise FormulaError("formula is empty", column=1, code="syntax")
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        raise _explain_syntax_error(body, exc, source) from None
    except (RecursionError, MemoryError):
        raise FormulaError("formula is too complex (nested too deeply to parse)", column=1,
                           code="too-complex") from None
    except ValueError as exc:  # NUL bytes
        column = text.find("\x00") + 1 or 1
        raise FormulaError(f"syntax error: {exc}", column=column, code="syntax") from None

    _measure(tree.body, source)
    checker = _Checker(source, functions)
    try:
        checker.check(tree.body)
    except RecursionError:  # unreachable after _measure; belt and braces
        raise FormulaError("formula is too complex", column=1, code="too-complex") from None

    builtins = frozenset(name for name in checker.called
                         if _is_builtin(name, functions[name].func))
    scalar = ast.fix_missing_locations(_lower(tree.body, array=False, builtins=builtins))
    array = ast.fix_missing_locations(_lower(tree.body, array=True, builtins=builtins))
    big = ast.fix_missing_locations(_lower(tree.body, array=True, inplace=True,
                                           builtins=builtins))
    return Formula(text, checker.names, checker.called, scalar, array, big, functions,
                   tree.body)


def _is_builtin(name: str, func: Any) -> bool:
    try:
        return func is builtin(name)
    except KeyError:
        return False
