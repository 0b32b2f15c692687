"""``kpiforge report``: the periodic report (placeholder while it is written)."""

from __future__ import annotations

import click

__all__ = ["report_command"]


@click.command(name="report")
def report_command() -> None:
    """The periodic report of a project."""
