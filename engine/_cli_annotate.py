"""``kpiforge annotate``: notes on periods (a tracking change, an algorithm update, a campaign),
stored with the history and shown by ``kpiforge history``, reports and the dashboard.

Annotations are the one thing a user writes into the history database, so this is also where
they are listed and deleted: the dashboard stays read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn, Sequence

import click

if TYPE_CHECKING:  # rich is imported when output is drawn: --help does not need it
    from rich.table import Table

from ._cli_common import (fail, format_option, load_project_or_fail, loaded_engine, print_json,
                          project_option, stdout)
from ._periods import GRAINS
from ._terminal import text
from .errors import AnnotationError, KpiforgeError, UnknownKpiError, did_you_mean

__all__ = ["annotate_command"]

# an AnnotationError's field -> the option that gave it
_OPTIONS = {"period": "--period", "grain": "--grain", "kpi": "--kpi", "slice": "--slice",
            "text": "TEXT", "author": "--author", "id": "--delete"}


def _slices(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        dim, sep, value = pair.partition("=")
        if not sep or not dim.strip():
            raise click.BadParameter(f"expected DIM=VALUE, got {pair!r}", param_hint="--slice")
        if dim.strip() in out:
            raise click.BadParameter(f"{dim.strip()} is given twice", param_hint="--slice")
        out[dim.strip()] = value
    return out


def _failed(exc: KpiforgeError) -> NoReturn:
    if isinstance(exc, AnnotationError):
        fail(f"{_OPTIONS.get(exc.field, exc.field)}: {exc.message}")
    if isinstance(exc, UnknownKpiError):
        fail(f"--kpi: {exc}")
    fail(str(exc))


@click.command(name="annotate")
@click.argument("note", metavar="TEXT", required=False)
@project_option("kpiforge.yaml")
@click.option("--kpi", "kpis", multiple=True, metavar="ID",
              help="The KPI it is about (repeatable: one annotation each). None, or '*': every "
                   "KPI (a site-wide tracking change touches them all).")
@click.option("--period", metavar="PERIOD",
              help="When: 2026-10-14, 2026-W43, 2026-10, 2026-Q4 or 2026, as for kpiforge run.")
@click.option("--grain", type=click.Choice(GRAINS),
              help="Store the period of this (coarser) grain holding --period: --period "
                   "2026-10-14 --grain week is 2026-W42. Default: the period's own.")
@click.option("--slice", "slices", multiple=True, metavar="DIM=VALUE",
              help="Only about this slice (repeatable: every value must match).")
@click.option("--author", metavar="NAME", help="Who wrote it. Default: the current user.")
@click.option("--list", "list_", is_flag=True,
              help="List the annotations (of --kpi, those about every KPI included; "
                   "--kpi '*': only those).")
@click.option("--delete", "delete", type=int, metavar="ID", help="Delete the annotation ID.")
@format_option("table", "json")
@click.pass_obj
def annotate_command(context: Any, note: str | None, project_file: str, kpis: Sequence[str],
                     period: str | None, grain: str | None, slices: Sequence[str],
                     author: str | None, list_: bool, delete: int | None, fmt: str) -> None:
    """Write down what happened at a period (a tracking change, an algorithm update, a
    campaign) so that history, reports and the dashboard show it beside the values:

    \b
    kpiforge annotate --kpi ctr --period 2026-10-14 "Consent banner: iOS tracking lost"
    kpiforge annotate --period 2026-10 "Site-wide GA4 migration"   # every KPI

    The TEXT is 1 to 500 characters. --list shows the annotations (--format json: an
    "annotations" list), --delete ID removes one.
    """
    writing = [name for name, given in (("TEXT", note is not None), ("--period", period),
                                        ("--grain", grain), ("--slice", slices),
                                        ("--author", author)) if given]
    if list_ and delete is not None:
        fail("give --list or --delete ID, not both", 2)
    if (list_ or delete is not None) and (writing or (delete is not None and kpis)):
        fail(f"{'--list' if list_ else '--delete'} does not take "
             f"{', '.join(writing or ['--kpi'])}", 2)
    if not list_ and delete is None and (note is None or period is None):
        fail("give --period PERIOD and the TEXT to add an annotation (or --list, --delete ID)",
             2)
    values = _slices(slices)
    project = load_project_or_fail(project_file, context.plugins)
    engine = loaded_engine(lambda: project.engine)
    try:
        if list_:
            kpi = kpis[0] if len(kpis) == 1 else None
            if len(kpis) > 1:
                fail("--list takes one --kpi", 2)
            if kpi not in (None, "*") and kpi not in engine.definitions:
                raise UnknownKpiError(f"unknown KPI '{kpi}'"
                                      f"{did_you_mean(kpi, sorted(engine.definitions))}")
            found = project.annotations(kpi)  # '*': those about every KPI only
        elif delete is not None:
            found = (project.delete_annotation(delete),)
        else:
            assert note is not None and period is not None
            found = project.annotate(note, period=period, kpis=list(kpis) or None, grain=grain,
                                     slice=values, author=author)
    except KpiforgeError as exc:
        _failed(exc)
    if fmt == "json":
        print_json({"annotations": [a.to_dict() for a in found]})
    elif list_:
        if found:
            stdout.print(annotations_table(found))
        else:
            stdout.print(text(f"no annotation in {project.history_path}"), highlight=False)
    else:
        done = "deleted" if delete is not None else "annotation"
        for a in found:
            stdout.print(text(f"{done} {a.id}: {a.kpi} {a.period}"
                              + "".join(f" {k}={v}" for k, v in a.slice.items())
                              + f": {a.text}"), highlight=False)


def annotations_table(found: Sequence[Any]) -> Table:
    from rich.table import Table

    table = Table(title=text(f"{len(found)} annotation{'s' if len(found) != 1 else ''}"),
                  title_justify="left")
    for column in ("id", "KPI", "period", "slice", "text", "author", "created"):
        table.add_column(column, no_wrap=column in ("id", "KPI", "period", "created"),
                         overflow="fold", justify="right" if column == "id" else "left")
    for a in found:
        kpi = "every KPI" if a.kpi == "*" else a.kpi
        table.add_row(text(str(a.id)), text(kpi), text(a.period),
                      text(", ".join(f"{k}={v}" for k, v in a.slice.items())), text(a.text),
                      text(a.author), text(a.created))
    return table
