"""Alert message templates: Jinja2 in an immutable sandbox, bounded in time, size and loops.

Templates are written by KPI authors, and KPI files may come from third parties, so a template
is untrusted code. Jinja's sandbox stops escapes (``__class__``, ``__globals__``, mutating
methods); it does not stop denial of service, which this module adds:

* ``range`` is capped per call and per render; ``lipsum`` is gone;
* ``*``, ``**``, ``+`` and ``%`` are intercepted so no operator can build a huge string,
  list or integer; the padding filters and printf-style formats refuse huge widths;
* string methods are limited to a small allow-list (``'x'.ljust(10**9)`` would allocate);
* a line tracer stops a render after a deadline or a step budget (nested loops that print
  nothing would otherwise spin for hours);
* the output is cut at a maximum length.

A template that fails in any way renders as the error text followed by the default message,
so the alert is still delivered; user text is never passed to ``str.format``.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import threading
import time
from typing import Any, Mapping

from jinja2 import TemplateError, Undefined
from jinja2 import filters as jinja_filters
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup, escape

__all__ = [
    "DEFAULT_MESSAGE",
    "DEFAULT_RESOLVED_MESSAGE",
    "MAX_OUTPUT",
    "TemplateLimitError",
    "render",
    "render_message",
]

MAX_SOURCE = 10_000
MAX_OUTPUT = 8_000
MAX_RANGE_CALL = 1_000
MAX_RANGE_TOTAL = 10_000
MAX_SEQUENCE = 20_000
MAX_WIDTH = 500
MAX_STEPS = 200_000
DEADLINE_SECONDS = 0.5

DEFAULT_MESSAGE = (
    "{{ name }} is {{ status }}: {{ value_text }}"
    "{% if period %} for {{ period }}{% endif %}"
    "{% if slice_text %} ({{ slice_text }}){% endif %}"
    "{% if change_text %}, {{ change_text }}{% endif %}."
)
DEFAULT_RESOLVED_MESSAGE = (
    "{{ name }} recovered: {{ value_text }} ({{ status }})"
    "{% if period %} for {{ period }}{% endif %}"
    "{% if slice_text %} ({{ slice_text }}){% endif %}."
)

_STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha", "isdigit",
    "islower", "isnumeric", "isspace", "istitle", "isupper", "lower", "lstrip", "rfind",
    "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title",
    "upper",
})
_MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})
_SEQUENCE_METHODS = frozenset({"count", "index"})
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


class TemplateLimitError(SecurityError):
    """A template went past a time, size or loop limit."""


class _Budget(threading.local):
    deadline: float = 0.0
    steps: int = 0
    range_left: int = 0
    active: bool = False


_budget = _Budget()


def _tracer(frame: Any, event: str, arg: Any) -> Any:
    # Only compiled template code is traced; Jinja's runtime and the stdlib run untraced.
    if frame.f_code.co_filename != "<template>":
        return None
    return _line_tracer


def _line_tracer(frame: Any, event: str, arg: Any) -> Any:
    _budget.steps += 1
    if _budget.steps > MAX_STEPS or (_budget.steps & 63 == 0 and time.monotonic() > _budget.deadline):
        raise TemplateLimitError("template ran too long (loop or time limit reached)")
    return _line_tracer


def _safe_range(*args: Any) -> range:
    values = range(*args)
    if len(values) > MAX_RANGE_CALL:
        raise TemplateLimitError(f"range() is limited to {MAX_RANGE_CALL} items in templates")
    _budget.range_left -= len(values)
    if _budget.range_left < 0:
        raise TemplateLimitError(f"templates may iterate over at most {MAX_RANGE_TOTAL} range items")
    return values


def _check_printf(fmt: Any) -> None:
    if isinstance(fmt, str):
        for match in _PRINTF_SPEC.finditer(fmt):
            for number in match.groups():
                if number == "*" or (number and int(number) > MAX_WIDTH):
                    raise TemplateLimitError(f"format widths are limited to {MAX_WIDTH}")


def _sized(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple, Markup)) else None


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(left, int) and isinstance(right, int):
                if right > 256 or max(abs(left), 1).bit_length() * max(right, 0) > 4096:
                    raise TemplateLimitError("power too large for a template")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                size = _sized(seq)
                if size is not None and isinstance(times, int) and size * times > MAX_SEQUENCE:
                    raise TemplateLimitError("repetition too large for a template")
        elif operator == "+":
            a, b = _sized(left), _sized(right)
            if a is not None and b is not None and a + b > MAX_SEQUENCE:
                raise TemplateLimitError("concatenation too large for a template")
        elif operator == "%":
            _check_printf(left)
        return super().call_binop(context, operator, left, right)

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


def _limited_width(name: str, func: Any, position: int, key: str) -> Any:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        width = kwargs.get(key, args[position] if len(args) > position else None)
        if isinstance(width, int) and abs(width) > MAX_WIDTH:
            raise TemplateLimitError(f"{name}() width is limited to {MAX_WIDTH}")
        return func(*args, **kwargs)
    return wrapper


def _format_filter(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_printf(value)
    return jinja_filters.do_format(value, *args, **kwargs)


def _replace_filter(eval_ctx: Any, s: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(s)
    if old and new and len(new) > len(old):
        growth = text.count(old) * (len(new) - len(old))
        if len(text) + growth > MAX_SEQUENCE:
            raise TemplateLimitError("replace() result too large for a template")
    return jinja_filters.do_replace(eval_ctx, s, old, new, count)


_replace_filter.jinja_pass_arg = jinja_filters.do_replace.jinja_pass_arg  # type: ignore[attr-defined]


def _make_env(html: bool) -> _Sandbox:
    env = _Sandbox(autoescape=html, undefined=Undefined, keep_trailing_newline=False)
    env.globals.pop("lipsum", None)
    env.globals["range"] = _safe_range
    env.filters["center"] = _limited_width("center", jinja_filters.do_center, 1, "width")
    env.filters["indent"] = _limited_width("indent", jinja_filters.do_indent, 1, "width")
    env.filters["batch"] = _limited_width("batch", jinja_filters.do_batch, 1, "linecount")
    env.filters["slice"] = _limited_width("slice", jinja_filters.do_slice, 1, "slices")
    env.filters["wordwrap"] = _limited_width("wordwrap", jinja_filters.do_wordwrap, 2, "width")
    env.filters["truncate"] = _limited_width("truncate", jinja_filters.do_truncate, 2, "length")
    env.filters["format"] = _format_filter
    env.filters["replace"] = _replace_filter
    return env


_ENVS = {False: _make_env(False), True: _make_env(True)}


@functools.lru_cache(maxsize=256)
def _compile(source: str, html: bool) -> Any:
    return _ENVS[html].from_string(source)


def _plain(context: Mapping[str, Any]) -> dict[str, Any]:
    # A JSON round trip leaves only dicts, lists, strings, numbers and None: no live object
    # with methods or internals reaches the template.
    return json.loads(json.dumps(dict(context), default=str, ensure_ascii=False))


def render(source: str, context: Mapping[str, Any], *, html: bool = False,
           max_chars: int = MAX_OUTPUT) -> str:
    """Render ``source`` with every limit applied; raise on any error (see render_message)."""
    if len(source) > MAX_SOURCE:
        raise TemplateLimitError(f"template longer than {MAX_SOURCE} characters")
    template = _compile(source, html)
    variables = _plain(context)
    if _budget.active:  # a template rendered from inside a template render: not possible
        raise TemplateLimitError("nested template rendering")
    previous_trace = sys.gettrace()
    _budget.active = True
    _budget.deadline = time.monotonic() + DEADLINE_SECONDS
    _budget.steps = 0
    _budget.range_left = MAX_RANGE_TOTAL
    pieces: list[str] = []
    size = 0
    sys.settrace(_tracer)
    try:
        generator = template.generate(variables)
        try:
            for piece in generator:
                pieces.append(piece)
                size += len(piece)
                if size > max_chars:
                    break
        finally:
            generator.close()
    finally:
        sys.settrace(previous_trace)
        _budget.active = False
    text = "".join(pieces)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return text


def render_message(source: str | None, context: Mapping[str, Any], *, html: bool = False,
                   resolved: bool = False) -> str:
    """The message of an alert: the KPI's template, or the default one.

    Never raises: a broken or hostile template yields ``[template error: ...]`` followed by the
    default message, so the people who own the KPI still learn about it.
    """
    default = DEFAULT_RESOLVED_MESSAGE if resolved else DEFAULT_MESSAGE
    if source:
        try:
            return render(source, context, html=html)
        except (TemplateError, RecursionError, MemoryError, OverflowError, ArithmeticError,
                TypeError, ValueError, AttributeError, LookupError) as exc:
            error = f"[template error: {type(exc).__name__}: {str(exc)[:300]}]"
            fallback = render(default, context, html=html)
            return f"{escape(error) if html else error} {fallback}"
    return render(default, context, html=html)
