"""``kpiforge alerts ...`` and ``kpiforge silence ...``: the alert store from the command line.

A built-in plugin like any other: it adds the two command groups, which live in
:mod:`._alerting_commands` and are imported (with click) when the command line asks for its
commands, never when a library loads the plugins (``Project.load``, ``Engine.load``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kpiforge.hookspecs import hookimpl

if TYPE_CHECKING:
    import click

__all__ = ["alerts_group", "kpiforge_register_commands", "silence_group"]


@hookimpl
def kpiforge_register_commands(cli: click.Group) -> None:
    from ._alerting_commands import alerts_group, silence_group

    cli.add_command(alerts_group)
    cli.add_command(silence_group)


def __getattr__(name: str) -> Any:  # the groups, for who imported them from here
    if name in ("alerts_group", "silence_group"):
        from . import _alerting_commands

        return getattr(_alerting_commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
