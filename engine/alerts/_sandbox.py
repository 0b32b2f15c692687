"""The Jinja2 sandbox alert templates run in: every value a template makes is bounded.

Jinja's sandbox stops escapes (``__class__``, ``__globals__``, mutating methods); it does not
stop denial of service. This module keeps one invariant instead of chasing constructs: **no
value a template can reach is larger than** :data:`MAX_VALUE` (its printed size: characters
of a string, or of the ``str()`` of a list, dict, tuple or integer). It is checked *before* the
value is built, wherever the compiled template builds values:

* operators: ``+ - * / // % **`` (``call_binop``; integers are kept under
  :data:`MAX_INT_BITS` bits, so no big-integer product or power is slow), ``~`` (the code
  generator emits a checked join instead of Jinja's ``str_join``/``markup_join``), list, tuple
  and dict literals (nested references cannot grow a value exponentially);
* the buffers of ``{% set %}...{% endset %}``, macros, call and filter blocks
  (``environment.concat``) and every ``{{ ... }}`` output (``finalize``);
* every filter (an allow-list in :mod:`._sandbox_filters`, each wrapped: ``join``, ``format``, ``replace``, ``indent``,
  ``wordwrap``, ``sum``, ``round`` ... predict their result size from their arguments), every
  call (methods, macros, ``namespace()``), slices, and ``range`` (capped per call and per render);
* macros cannot use ``varargs``/``kwargs`` and ``cycler``/``lipsum`` are gone (they build
  containers outside the checks above).

Since every value is bounded, every single operation on them is too (a comparison, a sort, a
hash of at most :data:`MAX_VALUE` elements), and on top of that each render has a budget:
at most :data:`MAX_ALLOCATED` characters/items built in total, :data:`MAX_STEPS` template lines
executed, and :data:`DEADLINE_SECONDS` of real time, checked on every line by a tracer.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Mapping as MappingABC
from typing import Any, Callable, Iterable, Mapping

from jinja2 import Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace

from ..errors import TemplateLimitError

__all__ = ["DEADLINE_SECONDS", "MAX_ALLOCATED", "MAX_INT_BITS", "MAX_STEPS", "MAX_VALUE",
           "TemplateLimitError", "bounded", "checked", "make_environment", "printf_size",
           "running", "size_of"]

MAX_VALUE = 64 * 1024           # printed size of any one value (characters)
MAX_ALLOCATED = 2_000_000       # characters/items built by one render, in total
MAX_INT_BITS = 4096
MAX_RANGE_CALL = 1_000
MAX_RANGE_TOTAL = 10_000
MAX_WIDTH = 500                 # padding widths, printf widths and precisions
MAX_STEPS = 200_000             # template lines executed by one render
DEADLINE_SECONDS = 0.5

_STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha", "isdigit",
    "islower", "isnumeric", "isspace", "istitle", "isupper", "lower", "lstrip", "rfind",
    "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title",
    "upper",
})
_MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})
_SEQUENCE_METHODS = frozenset({"count", "index"})
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORBIDDEN_NAMES = frozenset({"varargs", "kwargs"})


class _Budget(threading.local):
    deadline: float = 0.0
    steps: int = 0
    range_left: int = 0
    allocated: int = 0
    active: bool = False


_budget = _Budget()


# -- sizes -----------------------------------------------------------------------------------

def size_of(value: Any, limit: int = MAX_VALUE) -> int:
    """The printed size of ``value``, counted up to just past ``limit`` (then it stops).

    Shared references are counted each time they would be printed, so a list holding the same
    big list twice is twice as big: the cost of comparing, hashing or printing it.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() * 10 // 33 + 2
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, Namespace):
            if item is not value:
                # Namespaces are mutable: one inside a container could grow it later, unchecked.
                raise TemplateLimitError("a namespace cannot be put inside a list, tuple or dict")
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        elif isinstance(item, MappingABC):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset, range)) or (
                hasattr(item, "__len__") and hasattr(item, "__iter__")
                and type(item).__name__.startswith("dict_")):
            total += 2 + 2 * len(item)
            if len(item) > limit:
                return limit + 1
            stack.extend(item)
        else:
            total += 16
        if total > limit:
            return limit + 1
    return total


def charge(amount: int) -> None:
    if _budget.active:
        _budget.allocated += amount
        if _budget.allocated > MAX_ALLOCATED:
            raise TemplateLimitError(
                f"template built more than {MAX_ALLOCATED} characters in total")


def bounded(size: int, what: str) -> None:
    """Refuse to build a value of ``size``; else charge it to the render's budget."""
    if size > MAX_VALUE:
        raise TemplateLimitError(f"{what} would be larger than {MAX_VALUE} characters")
    charge(size)


def checked(value: Any, what: str) -> Any:
    bounded(size_of(value), what)
    return value


def _len(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple, dict)) else size_of(value)


# -- the tracer: steps and real time ---------------------------------------------------------

def _tracer(frame: Any, event: str, arg: Any) -> Any:
    # Only compiled template code is traced; Jinja's runtime and the stdlib run untraced.
    if frame.f_code.co_filename != "<template>":
        return None
    return _line_tracer


def _line_tracer(frame: Any, event: str, arg: Any) -> Any:
    _budget.steps += 1
    if _budget.steps > MAX_STEPS or time.monotonic() > _budget.deadline:
        raise TemplateLimitError("template ran too long (loop or time limit reached)")
    return _line_tracer


class running:
    """``with running():`` around one render: resets the budget and traces template lines."""

    def __enter__(self) -> "running":
        if _budget.active:  # a template rendered from inside a template render: not possible
            raise TemplateLimitError("nested template rendering")
        self._previous = sys.gettrace()
        _budget.active = True
        _budget.deadline = time.monotonic() + DEADLINE_SECONDS
        _budget.steps = 0
        _budget.allocated = 0
        _budget.range_left = MAX_RANGE_TOTAL
        sys.settrace(_tracer)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(self._previous)
        _budget.active = False


# -- the code generator: checked ``~`` and literals ------------------------------------------

class _CheckedCodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _literal(self, visit: Callable[..., None], node: nodes.Node, frame: Frame) -> None:
        if getattr(node, "ctx", "load") != "load":
            visit(self, node, frame)
            return
        self.write("environment.checked_literal(")
        visit(self, node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._literal(CodeGenerator.visit_List, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        self._literal(CodeGenerator.visit_Tuple, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._literal(CodeGenerator.visit_Dict, node, frame)


# -- operators -------------------------------------------------------------------------------

def _int_bits(operator: str, left: int, right: int) -> int:
    a, b = left.bit_length(), right.bit_length()
    if operator == "*":
        return a + b
    if operator == "**":
        if right < 0:
            return 0  # a float
        if right > MAX_INT_BITS:
            return MAX_INT_BITS + 1
        return max(a, 1) * right
    return max(a, b) + 1


def _check_printf(fmt: Any) -> int:
    """Refuse huge widths; return how many conversions ``fmt`` has."""
    count = 0
    if isinstance(fmt, str):
        for match in _PRINTF_SPEC.finditer(fmt):
            count += 1
            for number in match.groups():
                if number == "*" or (number and int(number) > MAX_WIDTH):
                    raise TemplateLimitError(f"format widths are limited to {MAX_WIDTH}")
    return count


def printf_size(fmt: str, args: Any) -> int:
    conversions = _check_printf(fmt)
    return len(fmt) + size_of(args) + conversions * MAX_WIDTH


class Sandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _CheckedCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if isinstance(left, int) and isinstance(right, int):
            if _int_bits(operator, left, right) > MAX_INT_BITS:
                raise TemplateLimitError(f"integers in templates are limited to {MAX_INT_BITS} bits")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(times, int) and not isinstance(seq, (int, float)):
                    one = len(seq) if isinstance(seq, str) else size_of(seq)
                    bounded(one * max(times, 0), "repetition")
        elif operator == "+":
            bounded(_len(left) + _len(right), "concatenation")
        elif operator == "%" and isinstance(left, str):
            bounded(printf_size(left, right), "formatted string")
        return super().call_binop(context, operator, left, right)

    def checked_concat(self, parts: tuple[Any, ...]) -> str:
        bounded(sum(size_of(p) for p in parts), "'~' concatenation")
        return "".join(str(p) for p in parts)

    def checked_literal(self, value: Any) -> Any:
        return checked(value, "list, tuple or dict")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        return checked(super().call(__context, __obj, *args, **kwargs), "call result")

    def getitem(self, obj: Any, argument: Any) -> Any:
        value = super().getitem(obj, argument)
        if isinstance(argument, slice):
            charge(_len(value))
        return value

    def wrap_str_format(self, value: Any) -> None:
        # str.format / format_map take widths from the format spec ("{:999999999}") and Jinja's
        # sandboxed formatter does not bound them; the format filter (printf, checked) remains.
        if getattr(value, "__name__", None) in ("format", "format_map") and isinstance(
                getattr(value, "__self__", None), str):
            raise SecurityError("str.format is not available in templates; use the format filter")
        return None

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Jinja renders a blocked attribute as an empty string; an author probing internals
        # should see the refusal instead.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} "
                            "is not allowed in templates")

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(obj, str):
            return attr in _STR_METHODS
        if isinstance(obj, Mapping):
            return attr in _MAPPING_METHODS
        if isinstance(obj, (list, tuple)):
            return attr in _SEQUENCE_METHODS
        return True

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for found in tree.find_all(nodes.Name):
            if found.name in _FORBIDDEN_NAMES:
                raise SecurityError(f"'{found.name}' is not available in alert templates")
        return tree


# -- globals and filters ---------------------------------------------------------------------

def _safe_range(*args: Any) -> range:
    values = range(*args)
    if len(values) > MAX_RANGE_CALL:
        raise TemplateLimitError(f"range() is limited to {MAX_RANGE_CALL} items in templates")
    _budget.range_left -= len(values)
    if _budget.range_left < 0:
        raise TemplateLimitError(f"templates may iterate over at most {MAX_RANGE_TOTAL} range items")
    return values


def _finalize(value: Any) -> Any:
    return checked(value, "an output value")


def _concat(pieces: Iterable[str]) -> str:
    collected: list[str] = []
    total = 0
    for piece in pieces:
        total += len(piece)
        if total > MAX_VALUE:
            raise TemplateLimitError(f"a block, macro or set would be larger than {MAX_VALUE} characters")
        collected.append(piece)
    charge(total)
    return "".join(collected)


def make_environment(filters: Mapping[str, Callable[..., Any]]) -> Sandbox:
    """The sandbox with only ``filters`` (the checked ones of ``_sandbox_filters``, which
    builds on this module: passed in, so that the two do not import each other)."""
    # optimized=False: no constant folding, which would run filters and '~' at compile time,
    # outside every check above.
    env = Sandbox(autoescape=False, undefined=Undefined, keep_trailing_newline=False,
                  optimized=False, finalize=_finalize)
    env.concat = _concat  # type: ignore[method-assign]
    for name in ("lipsum", "cycler"):
        env.globals.pop(name, None)
    env.globals["range"] = _safe_range
    env.filters = dict(filters)
    return env
