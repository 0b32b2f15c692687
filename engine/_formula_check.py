"""The formula allow-list: parse a formula and refuse, before anything runs, what it may not do.

Formulas come from YAML files and are untrusted. This is the first of the two layers that keep
them contained (the second is asteval's own configuration, ``_formula_interp``): numbers,
names, arithmetic, comparisons, ``and``/``or``/``not``, ``a if c else b`` and positional calls
to registered functions. Everything else is rejected with a :class:`FormulaError` that names
the construct and its column.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Callable, Mapping, cast

from .errors import FormulaError

MAX_FORMULA_LENGTH = 4_000
MAX_NODES = 1_000  # counted like ast.walk, i.e. including operator and context nodes
MAX_DEPTH = 100  # keeps asteval's recursive run() far away from the recursion limit


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function formulas may call; ``max_args=None`` means variadic."""

    name: str
    func: Callable[..., Any]
    min_args: int = 0
    max_args: int | None = None
    doc: str = ""



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


def column_of(text: str) -> Callable[[ast.AST], int]:
    """The 1-based character column in ``text`` of a node of its checked tree (the tree is
    parsed without the leading blanks; columns count characters, not UTF-8 bytes, and run on
    across lines), for messages about a node found after the check (``_totals``)."""
    body = text.lstrip()
    source = _Source(body, len(text) - len(body))
    return lambda node: source.column(getattr(node, "lineno", None),
                                      getattr(node, "col_offset", None))


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
            attr = node.attr
            message = f"{message} ('.{attr}')"
            column = self.source.column(node.end_lineno,
                                        (node.end_col_offset or 0) - len(attr.encode()) - 1)
        else:
            column = self.source.column(getattr(node, "lineno", None),
                                        getattr(node, "col_offset", None))
        return FormulaError(message, column=column, code=code)

    def check(self, node: ast.AST) -> None:
        kind = type(node)
        if type(node) is ast.Constant:
            self.check_constant(node)
        elif type(node) is ast.Name:
            self.check_name(node)
        elif type(node) is ast.BinOp:
            op = type(node.op)
            if op not in _BINOPS:
                raise self.fail(node, f"operator {_BAD_BINOPS.get(op, op.__name__)!r} is not allowed")
            self.check(node.left)
            self.check(node.right)
        elif type(node) is ast.UnaryOp:
            if type(node.op) is ast.Invert:
                raise self.fail(node, "operator '~' is not allowed")
            self.check(node.operand)
        elif type(node) is ast.BoolOp:
            for value in node.values:
                self.check(value)
        elif type(node) is ast.Compare:
            for cmp in node.ops:
                if type(cmp) not in _CMPOPS:
                    name = _BAD_CMPOPS.get(type(cmp), type(cmp).__name__)
                    raise self.fail(node, f"comparison operator {name!r} is not allowed")
            self.check(node.left)
            for value in node.comparators:
                self.check(value)
        elif type(node) is ast.IfExp:
            self.check(node.test)
            self.check(node.body)
            self.check(node.orelse)
        elif type(node) is ast.Call:
            self.check_call(node)
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
            import difflib  # here: only a mistake needs it

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
            column = source.column(getattr(located, "lineno", None),
                                   getattr(located, "col_offset", None))
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
            checker.check(cast(ast.Expr, module.body[0]).value)  # the loop above made sure
        except FormulaError as err:
            return err
    msg = exc.msg or "invalid syntax"
    column = source.char_column(exc.lineno, exc.offset)
    if not column:  # e.g. NUL bytes are refused before tokenizing, without a position
        column = (text.find("\x00") + 1 or 1) + source.lead
    if "too many nested parentheses" in msg:
        return FormulaError(f"formula is too complex ({msg})", column=column, code="too-complex")
    return FormulaError(f"syntax error: {msg}", column=column, code="syntax")


def check_formula(text: str, functions: Mapping[str, FunctionSpec]
                  ) -> tuple[ast.expr, set[str], set[str]]:
    """The checked tree of ``text``, the input names it reads and the functions it calls."""
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
    return tree.body, checker.names, checker.called
