"""``kpiforge plugins`` and ``kpiforge packs``: what the plugins registered, and the installed
definition packs with what they hold and where they come from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._cli_common import format_option

__all__ = ["count_kpis", "pack_rows", "packs_command", "plugins_command"]


def count_kpis(folder: Path) -> int:
    """The KPIs of a pack's files, counted without checking them: a pack often needs another
    one (its formulas use standard KPIs), so it cannot be loaded alone to be counted."""
    from ._defpaths import discover
    from ._yamlio import load_document
    from .errors import DefinitionError

    kpi_files = discover([folder])[0]
    count = 0
    for file in kpi_files:
        try:
            data = load_document(file).data
        except DefinitionError:
            continue  # `kpiforge validate -d PACK` says what is wrong with it
        if isinstance(data, dict) and isinstance(data.get("kpis"), list):
            count += len(data["kpis"])
        elif isinstance(data, dict) and "id" in data:
            count += 1
    return count


def pack_rows(plugins: Any) -> list[dict[str, Any]]:
    """One row per registered pack, by name: what ``kpiforge packs --format json`` prints."""
    rows = []
    for name, reg in sorted(plugins.packs.items()):
        pack = reg.obj
        rows.append({"name": name, "version": pack.version, "owner": pack.owner,
                     "kpis": count_kpis(pack.path), "requires": list(pack.requires),
                     "plugin": reg.plugin,
                     "origin": plugins.origins.get(reg.plugin, "?"), "path": str(pack.path),
                     "doc": pack.doc})
    return rows


@click.command(name="packs")
@format_option("table", "json")
@click.pass_obj
def packs_command(context: Any, fmt: str) -> None:
    """List the installed definition packs: version, owner, number of KPIs, and the plugin,
    distribution and folder each comes from. Any of them works as -d NAME."""
    from rich.table import Table

    from ._cli_common import print_json, stdout
    from ._format import plural
    from ._terminal import text

    rows = pack_rows(context.plugins)
    if fmt == "json":
        print_json({"packs": rows})
        return
    table = Table(title=plural(len(rows), "pack"))
    for column in ("pack", "version", "owner", "KPIs", "from", "path"):
        # names are what people type after -d: never cut
        table.add_column(column, no_wrap=column == "pack", justify="right" if column == "KPIs" else "left")
    for row in rows:
        table.add_row(*map(text, (row["name"], row["version"], row["owner"] or "—", str(row["kpis"]),
                                  f"{row['plugin']} ({row['origin']})", row["path"])))
    stdout.print(table)


@click.command(name="plugins")
@format_option("table", "json")
@click.pass_obj
def plugins_command(context: Any, fmt: str) -> None:
    """List every plugin, where it came from, and what it registered."""
    from rich.table import Table

    from ._cli_common import print_json, stdout
    from ._terminal import text

    if fmt == "json":
        print_json({"plugins": [{"name": i.name, "origin": i.origin, "registered": list(i.registered)}
                                for i in context.plugins.infos()],
                    "failures": dict(sorted(context.plugins.failures.items()))})
        return
    table = Table(title="plugins")
    for column in ("plugin", "origin", "registered"):
        table.add_column(column)
    for info in context.plugins.infos():
        table.add_row(text(info.name), text(info.origin), text("\n".join(info.registered) or "—"))
    for name, problem in sorted(context.plugins.failures.items()):
        table.add_row(text(name), text("failed", "red"), text(problem))
    stdout.print(table)
