"""Each filter alert templates may use, wrapped to predict its result's size (see ._sandbox).

A filter not listed in ``FILTER_CHECKS`` is not available: pprint, urlize, xmlattr (large
outputs from small inputs, HTML helpers), random (a message must not change between delivery
attempts), safe/forceescape (the output is never markup).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

from jinja2 import filters as jinja_filters

from ._sandbox import MAX_WIDTH, TemplateLimitError, bounded, checked, printf_size, size_of

__all__ = ["FILTER_CHECKS", "checked_filter", "checked_filters"]


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], position: int, key: str,
         default: Any = None) -> Any:
    return kwargs.get(key, args[position] if len(args) > position else default)


def _text_filter(factor: int) -> Callable[[tuple[Any, ...], Mapping[str, Any]], int]:
    """Filters that print their value first: the result is at most ``factor`` times as big."""
    return lambda args, kwargs: size_of(args[0]) * factor


def _join_size(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    items = args[0]
    separator = str(_arg(args, kwargs, 1, "d", ""))
    return size_of(items) + max(len(items) - 1, 0) * len(separator)


def _replace_size(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    text, old, new = str(args[0]), str(args[1]), str(args[2])
    count = text.count(old) if old else len(text) + 1
    return len(text) + count * max(len(new) - len(old), 0)


def _indent_size(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    width = _arg(args, kwargs, 1, "width", 4)
    pad = len(width) if isinstance(width, str) else int(width)
    if pad > MAX_WIDTH:
        raise TemplateLimitError(f"indent() width is limited to {MAX_WIDTH}")
    text = str(args[0])
    return len(text) + (text.count("\n") + 1) * max(pad, 0)


def _wordwrap_size(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    text = str(args[0])
    width = int(_arg(args, kwargs, 1, "width", 79))
    wrapstring = _arg(args, kwargs, 3, "wrapstring", None)
    wrap = len(str(wrapstring)) if wrapstring is not None else 1
    return len(text) + (len(text) // max(width, 1) + 1) * (wrap + 1)


def _width_size(position: int, key: str, default: int) -> Callable[..., int]:
    def size(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
        width = _arg(args, kwargs, position, key, default)
        if isinstance(width, int) and abs(width) > MAX_WIDTH:
            raise TemplateLimitError(f"width is limited to {MAX_WIDTH}")
        return size_of(args[0]) + (abs(width) if isinstance(width, int) else 0)
    return size


def _format_size(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    return printf_size(str(args[0]), (args[1:], kwargs))


def _sum_size(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    start = _arg(args, kwargs, 2, "start", 0)
    if not isinstance(start, (int, float)):
        # summing lists copies the partial result at every step (quadratic): numbers only
        raise TemplateLimitError("sum() adds numbers in templates; use join or + for the rest")
    return 0


def _round_size(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    precision = _arg(args, kwargs, 1, "precision", 0)
    if not isinstance(precision, int) or abs(precision) > 100:
        raise TemplateLimitError("round() precision is limited to 100 digits")
    return 0


def _batch_size(position: int, key: str) -> Callable[..., int]:
    def size(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
        count = _arg(args, kwargs, position, key, 1)
        if isinstance(count, int) and abs(count) > MAX_WIDTH:
            raise TemplateLimitError(f"{key} is limited to {MAX_WIDTH}")
        return size_of(args[0])
    return size


def _no_check(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    return 0


# name -> predicted result size from the arguments (raising when too big)
FILTER_CHECKS: dict[str, Callable[[tuple[Any, ...], Mapping[str, Any]], int]] = {
    "abs": _no_check, "attr": _no_check, "batch": _batch_size(1, "linecount"),
    "capitalize": _text_filter(3), "center": _width_size(1, "width", 80), "count": _no_check,
    "d": _no_check, "default": _no_check, "dictsort": _no_check, "e": _text_filter(6),
    "escape": _text_filter(6), "filesizeformat": _no_check, "first": _no_check,
    "float": _no_check, "format": _format_size, "groupby": _no_check, "indent": _indent_size,
    "int": _no_check, "items": _no_check, "join": _join_size, "last": _no_check,
    "length": _no_check, "list": _no_check, "lower": _text_filter(3), "map": _no_check,
    "max": _no_check, "min": _no_check, "reject": _no_check, "rejectattr": _no_check,
    "replace": _replace_size, "reverse": _no_check, "round": _round_size, "select": _no_check,
    "selectattr": _no_check, "slice": _batch_size(1, "slices"), "sort": _no_check,
    "string": _text_filter(1), "striptags": _text_filter(1), "sum": _sum_size,
    "title": _text_filter(3), "tojson": _text_filter(12), "trim": _text_filter(1),
    "truncate": _text_filter(1), "unique": _no_check, "upper": _text_filter(3),
    "urlencode": _text_filter(9), "wordcount": _text_filter(1), "wordwrap": _wordwrap_size,
}
def checked_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    check = FILTER_CHECKS[name]
    # Filters that take the environment or a context first have their value second.
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if name == "join" and len(args) > skip:
            # a generator (map, select) must be sized: it is consumed once, here
            args = (*args[:skip], list(args[skip]), *args[skip + 1:])
        bounded(check(args[skip:], kwargs), f"the result of {name}")
        result = func(*args, **kwargs)
        if isinstance(result, (str, list, tuple, dict)):
            checked(result, f"the result of {name}")
        return result

    return wrapper


def checked_filters() -> dict[str, Callable[..., Any]]:
    """Every filter templates may use, each behind its check."""
    return {name: checked_filter(name, jinja_filters.FILTERS[name]) for name in FILTER_CHECKS}
