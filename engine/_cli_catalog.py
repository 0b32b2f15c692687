"""``kpiforge catalog``: the readable catalog of every loaded KPI, as Markdown, HTML or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._cli_common import definitions_option, fail, format_option, lang_option, project_option

__all__ = ["catalog_command"]


@click.command(name="catalog")
@definitions_option
@project_option()
@lang_option
@format_option("md", "html", "json")
@click.option("--output", "-o", "output", type=click.Path(file_okay=False),
              help="Write catalog.md / catalog.html / catalog.json into this folder "
                   "(created if missing) instead of printing.")
@click.pass_obj
def catalog_command(context: Any, definitions: tuple[str, ...], project_file: str | None,
                    lang: str, fmt: str, output: str | None) -> None:
    """Generate the KPI catalog: grouped by category and objective, with thresholds in words
    and the dependency graph. Markdown for repositories, one self-contained HTML page for
    people, JSON for tools."""
    from ._catalog import FILE_NAMES, render
    from ._terminal import echo

    engine = context.engine(definitions, project_file)
    text = render(engine, lang, fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    target = Path(output) / FILE_NAMES[fmt]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # newline="\n": the same bytes on every OS, so a committed catalog does not churn
        with open(target, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}")
    echo(f"wrote {target}", err=True)
