"""Alert message templates: Jinja2 in an immutable sandbox, bounded in time, size and loops.

Templates are written by KPI authors, and KPI files may come from third parties, so a template
is untrusted code. :mod:`._sandbox` runs it with these bounds, whatever the construct
(``~`` doubling in a namespace, ``join`` over a large string, big-integer products in loops,
``*``, ``format``, ``replace``, nested literals...):

* no value it builds is larger than 64 KiB (``MAX_VALUE``) and no integer longer than 4096 bits;
* at most 2 000 000 characters/items built in total per render, 200 000 template lines and
  0.5 s of real time (checked on every template line);
* the message itself is cut at 8 000 characters (``MAX_OUTPUT``).

The output is plain text, never markup: each sink escapes it for its medium (HTML for e-mail,
mrkdwn for Slack). A template that fails or goes past a limit renders as
``[template error: ...]`` followed by the default message, so the alert is still delivered;
user text is never passed to ``str.format``.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Mapping

from jinja2 import TemplateError

from ._sandbox import (
    DEADLINE_SECONDS,
    MAX_ALLOCATED,
    MAX_VALUE,
    TemplateLimitError,
    make_environment,
    running,
)
from ._lang import alert_strings
from ._sandbox_filters import checked_filters

__all__ = [
    "DEADLINE_SECONDS",
    "DEFAULT_MESSAGE",
    "DEFAULT_RESOLVED_MESSAGE",
    "MAX_ALLOCATED",
    "MAX_OUTPUT",
    "MAX_VALUE",
    "TemplateLimitError",
    "render",
    "render_message",
]

MAX_SOURCE = 10_000
MAX_OUTPUT = 8_000

# the English defaults, kept as constants for the API; every language's are in
# templates/alert_messages.yaml (see ._lang)
DEFAULT_MESSAGE: str = alert_strings("en")["firing"]
DEFAULT_RESOLVED_MESSAGE: str = alert_strings("en")["resolved"]


_ENV = make_environment(checked_filters())


@functools.lru_cache(maxsize=256)
def _compile(source: str) -> Any:
    return _ENV.from_string(source)


def _plain(context: Mapping[str, Any]) -> dict[str, Any]:
    # A JSON round trip leaves only dicts, lists, strings, numbers and None: no live object
    # with methods or internals reaches the template.
    return json.loads(json.dumps(dict(context), default=str, ensure_ascii=False))


def render(source: str, context: Mapping[str, Any], *, max_chars: int = MAX_OUTPUT) -> str:
    """Render ``source`` with every limit applied; raise on any error (see render_message)."""
    if len(source) > MAX_SOURCE:
        raise TemplateLimitError(f"template longer than {MAX_SOURCE} characters")
    template = _compile(source)
    variables = _plain(context)
    pieces: list[str] = []
    size = 0
    with running():
        generator = template.generate(variables)
        try:
            for piece in generator:
                pieces.append(piece)
                size += len(piece)
                if size > max_chars:
                    break
        finally:
            generator.close()
    text = "".join(pieces)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return text


_FAILURES = (TemplateError, TemplateLimitError, RecursionError, MemoryError, OverflowError,
             ArithmeticError, TypeError, ValueError, AttributeError, LookupError)


def render_message(source: str | None, context: Mapping[str, Any], *,
                   resolved: bool = False) -> str:
    """The message of an alert: the KPI's template, or the default one in the context's
    ``lang`` (English when it has none).

    Never raises: a broken or hostile template yields ``[template error: ...]`` followed by the
    default message, so the people who own the KPI still learn about it.
    """
    default = alert_strings(context.get("lang"))["resolved" if resolved else "firing"]
    if source:
        try:
            return render(source, context)
        except _FAILURES as exc:
            error = f"[template error: {type(exc).__name__}: {str(exc)[:300]}]"
            return f"{error} {render(default, context)}"
    return render(default, context)
