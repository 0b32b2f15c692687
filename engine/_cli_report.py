"""``kpiforge report``: the weekly, monthly or quarterly report of a project, as a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._cli_common import (fail, format_option, load_project_or_fail, loaded_engine,
                          project_option, stderr)
from .errors import KpiforgeError

__all__ = ["report_command"]


@click.command(name="report")
@project_option("kpiforge.yaml")
@click.option("--grain", type=click.Choice(["week", "month", "quarter"]), required=True,
              help="A weekly, monthly or quarterly report.")
@click.option("--period", metavar="PERIOD",
              help="The period reported on (2026-W43, 2026-10, 2026-Q4). Default: the latest "
                   "with data.")
@click.option("--last", type=click.IntRange(min=2), metavar="N",
              help="Periods in the trend charts (default 13 weeks or months, 8 quarters).")
@click.option("--by", metavar="DIM", help="Also break each KPI down by this dimension.")
@click.option("--lang", type=click.Choice(["en", "fr"]), default="en", show_default=True,
              help="Language of the report.")
@format_option("html", "md", "json")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write the report into this folder. Default: the current folder (for json: "
                   "standard output).")
@click.option("--no-alerts", is_flag=True,
              help="Leave the period's alerts out (they are found by a dry run: nothing is "
                   "sent or recorded either way).")
@click.pass_obj
def report_command(context: Any, project_file: str, grain: str, period: str | None,
                   last: int | None, by: str | None, lang: str, fmt: str, out_dir: str | None,
                   no_alerts: bool) -> None:
    """Write the report a team sends every week, month or quarter: per objective, each KPI's
    value, status, change against the previous period and a year earlier, a trend chart with
    the threshold bands, a breakdown (--by); the period's alerts, the values that could not be
    computed and why, and the objectives' progress.

    html is one self-contained file (no network needed to open it, readable on a phone and in
    print); md writes the charts as SVG files beside it; json carries every number shown.
    html and md need the report extra: pip install 'kpiforge[report]'.
    """
    from ._report import build_report
    from ._report_render import render_html, render_json, render_markdown, report_name

    project = load_project_or_fail(project_file, context.plugins)
    engine = loaded_engine(lambda: project.engine)
    if by is not None and by not in project.dimensions():
        from .errors import did_you_mean

        fail(f"--by: no source has a dimension '{by}'{did_you_mean(by, project.dimensions())}")
    try:
        if fmt != "json":  # before the runs: a missing extra should not cost a minute first
            from ._report_charts import load_chart_libraries

            load_chart_libraries()
        data = build_report(project, grain=grain, period=period, last=last, by=by, lang=lang,
                            alerts=not no_alerts)
        if fmt == "json" and out_dir is None:
            click.echo(render_json(data), nl=False)
            return
        folder = Path(out_dir or ".")
        folder.mkdir(parents=True, exist_ok=True)
        if fmt == "md":
            path = render_markdown(data, folder)
        else:
            path = folder / f"{report_name(data)}.{fmt}"
            path.write_text(render_html(data) if fmt == "html" else render_json(data),
                            encoding="utf-8")
    except KpiforgeError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{out_dir or '.'}: cannot write the report: {exc.strerror or exc}")
    stderr.print(f"report written to {path}", markup=False, highlight=False)
