"""``kpiforge sql``: print one query that returns KPI values, for a BI tool or a warehouse.

The query is the source's own aggregate (what ``kpiforge run`` executes) with the KPI formulas
around it (``_kpi_sql``); its literals are the request's. Where the engine needs a session
setting first (DuckDB and PostgreSQL read naive values in the session time zone), that
statement is printed before the query, each ending with ``;``.
"""

from __future__ import annotations

from typing import Any, Sequence

import click

from ._cli_common import fail, load_project_or_fail, print_diagnostics, project_option
from ._periods import GRAINS
from .errors import DefinitionError, KpiforgeError

__all__ = ["sql_command"]

DIALECTS = ("athena", "bigquery", "clickhouse", "databricks", "duckdb", "mariadb", "mysql",
            "oracle", "postgres", "redshift", "snowflake", "spark", "sqlite", "trino", "tsql")


@click.command(name="sql")
@project_option("kpiforge.yaml")
@click.option("--kpi", "kpis", multiple=True, required=True, help="KPI to compute (repeatable).")
@click.option("--grain", type=click.Choice(GRAINS), help="Period length (default: the period's own, else month).")
@click.option("--period", metavar="PERIOD", help="Only this period (2026-10, 2026-W43, ...); default: all the data.")
@click.option("--by", "by", metavar="DIM,...", multiple=True, help="Split by these dimensions.")
@click.option("--dialect", type=click.Choice(DIALECTS),
              help="Write the SQL for this engine (default: the source's own).")
@click.pass_obj
def sql_command(context: Any, project_file: str, kpis: Sequence[str], grain: str | None,
                period: str | None, by: Sequence[str], dialect: str | None) -> None:
    """Print ONE SQL query returning the KPIs per period (and dimension): the source's
    aggregate with the formulas compiled to SQL (division by zero gives NULL)."""
    from ._kpi_sql import kpi_query

    project = load_project_or_fail(project_file, context.plugins)
    try:
        engine = project.engine
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        fail("errors in the definitions")
    try:
        query = kpi_query(engine, project, list(kpis), grain=grain, period=period, by=list(by),
                          dialect=dialect)
    except KpiforgeError as exc:
        fail(str(exc))
    click.echo(query.text, nl=False)
