"""``kpiforge ab``: an A/B comparison of one KPI across the values of a variant dimension."""

from __future__ import annotations

from typing import Any

import click

from ._cli_common import (fail, format_option, load_project_or_fail, loaded_engine,
                          print_json, project_option, stderr, stdout)
from .errors import KpiforgeError

__all__ = ["ab_command"]


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _split(text: str) -> dict[str, float]:
    shares: dict[str, float] = {}
    for part in text.split(","):
        name, sep, weight = part.partition("=")
        try:
            shares[name.strip()] = float(weight)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            fail(f"--split: '{part}' is not VARIANT=WEIGHT (e.g. --split A=50,B=50)", 2)
    return shares


@click.command(name="ab")
@project_option("kpiforge.yaml")
@click.option("--kpi", "kpi", required=True, metavar="ID", help="The KPI to compare.")
@click.option("--variant", required=True, metavar="DIM", help="The dimension holding the variants.")
@click.option("--control", required=True, metavar="VALUE", help="The variant the others are compared with.")
@click.option("--period", metavar="P", help="The period (2026-10, 2026-W41, 2026-Q4...).")
@click.option("--from", "start", metavar="DATE", help="First day (YYYY-MM-DD), included.")
@click.option("--to", "end", metavar="DATE", help="Last day (YYYY-MM-DD), included.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Significance level (and 1 - confidence of the intervals).")
@click.option("--split", metavar="V=W,...", help="The planned share of units per variant "
              "(e.g. A=50,B=50) for the sample-ratio-mismatch check. Default: equal.")
@format_option("table", "json")
@click.pass_obj
def ab_command(context: Any, project_file: str, kpi: str, variant: str, control: str,
               period: str | None, start: str | None, end: str | None, alpha: float,
               split: str | None, fmt: str) -> None:
    """Compare every value of the variant dimension with the control for one KPI.

    The test follows from the KPI's formula: a rate of a 0/1 count over units gets a
    two-proportion z-test, a sum over units Welch's t-test, a ratio of two sums the delta
    method. Each row of the source is one unit. Several variants: Holm-adjusted p-values.
    """
    from rich.table import Table
    if period is not None and (start is not None or end is not None):
        fail("use --period or --from/--to, not both", 2)
    shares = _split(split) if split is not None else None
    project = load_project_or_fail(project_file, context.plugins)
    loaded_engine(lambda: project.engine)  # definition or binding errors, located, exit 1
    try:
        from ._ab import ab  # numpy: only when the command runs, not for --help

        result = ab(project, kpi, variant=variant, control=control, period=period,
                    start=start, end=end, alpha=alpha, split=shares)
    except KpiforgeError as exc:
        fail(str(exc))
    if fmt == "json":
        print_json(result.to_dict())
        return
    table = Table("variant", "value", "control", "diff", f"{1 - alpha:.0%} interval", "lift",
                  "p-value", "test", title=f"{kpi}: {variant} against {control}")
    for r in result.results:
        mark = " *" if r.significant else ""
        table.add_row(r.variant, _num(r.value), _num(r.control_value), _num(r.diff) + mark,
                      f"{_num(r.ci_low)} .. {_num(r.ci_high)}",
                      "-" if r.lift is None else f"{r.lift:+.2%}", _num(r.p_value, 3), r.test)
    stdout.print(table)
    for warning in result.warnings:
        stderr.print(f"warning: {warning}", highlight=False)
