"""Text bound for a terminal: data and user strings are shown as written, never interpreted.

Two ways text read from a KPI file, a CSV cell or an argument could act on a terminal: as rich
markup (``[/x]`` crashes rich, ``kpiforge[sql]`` loses its ``[sql]``) and as escape sequences
(``\\x1b[2J`` clears the screen, ``\\x1b]8;;...`` plants a link). Every table cell, error and
console-sink line goes through :func:`clean` (visible ``\\x1b`` instead of the control
character) and reaches rich as a :class:`rich.text.Text`, which rich never parses as markup.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when text is drawn: --help does not need rich
    from rich.text import Text

__all__ = ["clean", "echo", "text"]

# C0 except tab and newline, DEL, and C1 (U+0080-U+009F: 8-bit CSI, OSC, ... on some terminals)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _visible(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def clean(value: Any) -> str:
    """``value`` as text with every control character but tab and newline shown as ``\\xNN``."""
    return _CONTROL.sub(_visible, value if isinstance(value, str) else str(value))


def text(value: Any, style: str = "") -> Text:
    """A rich ``Text`` of ``value``: printed literally (no markup), control characters cleaned."""
    from rich.text import Text
    return Text(clean(value), style=style)


def echo(message: Any = "", *, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` of a message that may hold data or user text."""
    import click  # here: the sinks clean text with this module, and a library run needs no click

    click.echo(clean(message), err=err, nl=nl)
