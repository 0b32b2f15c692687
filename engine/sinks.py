"""The public API for writing an alert sink: what a sink receives, what it raises, what it may use.

A sink type is registered from a ``kpiforge_register_sink_types`` hook with a
:class:`SinkFactory`; the factory returns a :class:`Sink`, whose ``send(alert)`` gets one
:class:`Alert` and either returns (delivered) or raises :class:`SinkError`::

    from kpiforge import hookimpl
    from kpiforge.sinks import Alert, SinkContext, SinkError, clean_text

    class Printer:
        def send(self, alert: Alert) -> None:
            try:
                print(clean_text(f"{alert.kpi}: {alert.message}"))
            except OSError as exc:
                raise SinkError(f"cannot print: {exc}", retryable=True) from exc

    @hookimpl
    def kpiforge_register_sink_types(register):
        register("printer", lambda name, settings, context: Printer(), secrets=())

Delivery is at-least-once: each message keeps its :attr:`Alert.id` on every attempt, so a
receiver can drop duplicates. ``SinkError(..., retryable=True)`` (a timeout, a connection
error, a 5xx or 429) is retried with backoff, then left in the outbox for the next dispatch or
``kpiforge alerts retry``; ``retryable=False``, the default (a 4xx, a refused setting), marks
the message failed at once (only ``kpiforge alerts retry`` tries it again, once the cause is
fixed). Any other exception out of ``send`` counts as retryable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Protocol, runtime_checkable

from ._redact import redact_url as _redact_url
from ._terminal import clean as _clean
from .errors import SinkError, TemplateLimitError
from .hookspecs import SinkContext, SinkFactory

if TYPE_CHECKING:
    from .alerts import Alert

__all__ = [
    "Alert",
    "Sink",
    "SinkContext",
    "SinkError",
    "SinkFactory",
    "TemplateLimitError",
    "clean_text",
    "redact_url",
    "render_template",
]


def __getattr__(name: str) -> Any:
    # Built-in sink plugins import this module when the CLI starts; the alert model (and
    # Jinja2 behind it) is imported when a sink first names it, which keeps start-up fast.
    if name == "Alert":
        from .alerts import Alert

        return Alert
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@runtime_checkable
class Sink(Protocol):
    """What a :class:`SinkFactory` returns: an object that delivers one alert per call.

    ``send`` runs in the sink's own worker thread (one per sink and dispatch), with the
    sink's ``timeout`` enforced around the call: enforce your own shorter timeouts on network
    calls too. Return when the alert was accepted; raise :class:`SinkError` when it was not,
    with ``retryable=True`` if another attempt may succeed and ``retry_after`` (seconds) when
    the receiver asked for a delay. Never print or raise a setting's secret value: the core
    masks the declared secrets in stored errors, but :func:`redact_url` keeps them out of
    messages in the first place.
    """

    def send(self, alert: Alert) -> None:
        """Deliver ``alert``; raise :class:`SinkError` if it was not delivered."""


def clean_text(value: Any) -> str:
    """``value`` as text safe for a terminal or a log: every control character but tab and
    newline is shown as ``\\xNN``, so an escape sequence in a KPI name or a data value cannot
    act on the reader's terminal. Not markup-escaping: print it as plain text (a
    ``rich.text.Text``), never as rich markup."""
    return _clean(value)


def redact_url(url: str, *, mask_path: bool = False) -> str:
    """``url`` fit for an error message: its password (or a lone user name, often a token),
    query values and fragment masked as ``***``; with ``mask_path``, the whole path too (for
    webhook URLs whose path is the token). Scheme, host and port are kept. Something that is
    not a URL keeps only what looks like its host."""
    return _redact_url(url, mask_path=mask_path)


def render_template(source: str, context: Mapping[str, Any], *, max_chars: int = 8_000) -> str:
    """Render the Jinja2 template ``source`` the way alert messages are rendered.

    Templates in settings or KPI files are untrusted: they run in an immutable sandbox
    bounded in time, size and loops, and see ``context`` only as plain JSON data (dicts,
    lists, strings, numbers, None), never live objects. The result is plain text, cut to
    ``max_chars`` characters (default: 8 000, as alert messages) with an ellipsis: escape it
    for your medium (HTML, mrkdwn).

    Raises :class:`TemplateLimitError` when a limit is passed and :class:`jinja2.TemplateError`
    (or the ``TypeError``/``ValueError``... of a bad expression) when the template is wrong;
    catch ``Exception`` and fall back to a default text, so a bad template never stops a
    delivery. ``alert.to_dict()`` (plus ``value_text=alert.value_text``) is the context alert
    messages get.
    """
    from .alerts._templates import render

    return render(source, context, max_chars=max_chars)
