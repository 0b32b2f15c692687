"""Golden SQL per dialect: the one aggregate query of a representative request, as each engine
gets it (tests/fixtures/sql/<dialect>.sql; ``UPDATE_GOLDEN=1`` rewrites them), and each parses
back with sqlglot in its own dialect; the same for a request grouped by day first, then by week
(tests/fixtures/sql/rollup/<dialect>.sql).

The request has a dimension, a range, a ``filter`` with a list and NULL, a definition's row
condition, first and last, a distinct count and a week grain starting on Sunday, over a column
with a time zone (converted) and over a DATE column (bucketed as it is, no conversion).
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlglot

from kpiforge.plugins.sources._dialects import Dialect, DuckDBDialect, Params, PostgresDialect
from kpiforge.plugins.sources._sqlite import SqliteDialect
from kpiforge.plugins.sources._glot import GLOT_TARGETS, GlotDialect
from kpiforge.plugins.sources._sql import build_aggregate_query
from kpiforge.plugins.sources._sqltree import column
from kpiforge.plugins.sources.databases import sql_dialect
from kpiforge.sources import Condition, InputSpec, SourceRequest

GOLDEN = Path(__file__).parent / "fixtures" / "sql"
DIALECTS: dict[str, tuple[Dialect, str]] = {
    "duckdb": (DuckDBDialect(), "duckdb"), "sqlite": (SqliteDialect(), "sqlite"),
    "postgres": (PostgresDialect(), "postgres"),
    **{name: (GlotDialect(name), target) for name, target in GLOT_TARGETS.items() if name != "mariadb"},
}
BIG = Condition("amount > 10 and customer_age >= 18", (("amount", "amount"), ("customer_age", "age")))
INPUTS = {
    "orders": InputSpec("orders", "count", column="*"),
    "revenue": InputSpec("revenue", "sum", column="amount", filter={"status": ("paid", None)}),
    "big_orders": InputSpec("big_orders", "count", column="*", where=BIG),
    "customers": InputSpec("customers", "count_distinct", column="customer"),
    "first_amount": InputSpec("first_amount", "first", column="amount"),
    "last_paid": InputSpec("last_paid", "last", column="amount", filter={"status": "paid"}),
}
REQUEST = SourceRequest("week", "Europe/Berlin", 6, ((date(2026, 1, 1), date(2026, 4, 1)),),
                        ("channel",), INPUTS)
# only aggregates whose days add up: grouped by day, then by week (tests/test_sql_rollup.py)
ROLLUP_REQUEST = SourceRequest("week", "Europe/Berlin", 6, REQUEST.ranges, ("channel",), {
    k: v for k, v in INPUTS.items() if v.agg in ("sum", "count")} | {
    "cheapest": InputSpec("cheapest", "min", column="amount"),
    "largest": InputSpec("largest", "max", column="amount", filter={"status": "paid"}),
    "items": InputSpec("items", "sum", column="quantity")})
GOLDENS = {"": REQUEST, "rollup": ROLLUP_REQUEST}  # folder under fixtures/sql -> request


def query(dialect: Dialect, time_type: str, request: SourceRequest = REQUEST) -> tuple[str, dict]:
    params = Params(dialect.param_style)
    raw = dialect.raw_time(column("ordered_at"), time_type)
    sql, values, _ = build_aggregate_query('"shop"."orders"', "ordered_at", request, dialect,
                                           params=params, time_sql=raw,
                                           missing_sql=dialect.time_missing(raw),
                                           time_kind=dialect.time_kind(time_type))
    return sql, values


def golden_text(dialect: Dialect, request: SourceRequest = REQUEST) -> str:
    parts = []
    for time_type in ("TIMESTAMP WITH TIME ZONE", "DATE"):
        sql, values = query(dialect, time_type, request)
        parts.append(f"-- time column: {time_type}; parameters: {values!r}\n{sql};\n")
    return "\n".join(parts)


@pytest.mark.parametrize("folder", sorted(GOLDENS))
@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_golden_sql(name, folder):
    dialect, _ = DIALECTS[name]
    path = GOLDEN / folder / f"{name}.sql"
    text = golden_text(dialect, GOLDENS[folder])
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"SQL differs from {path} (UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("folder, groups", [("", 1), ("rollup", 2)])
@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_each_golden_parses_back_in_its_dialect(name, folder, groups):
    _, read = DIALECTS[name]
    statements = [s for s in (GOLDEN / folder / f"{name}.sql").read_text().split(";\n") if s.strip()]
    assert len(statements) == 2
    for statement in statements:
        tree = sqlglot.parse_one(statement, read=read)
        # the one GROUP BY; rolled up: by day, then by period
        assert len(list(tree.find_all(sqlglot.exp.Group))) == groups
        names = {c.alias_or_name for c in tree.selects}
        assert {"__p", "__d0", "__i0", "__i5", "__n"} <= names


@pytest.mark.parametrize("name", sorted(set(GLOT_TARGETS) - {"mysql", "mariadb"}))
def test_first_last_are_window_functions_not_array_indexing(name):
    """sqlglot's own transpilation of ``(array_agg(x ORDER BY t) FILTER (...))[1]`` is wrong on
    several engines: first and last are FIRST_VALUE windows on every sqlglot-rendered dialect."""
    sql, _ = query(GlotDialect(name), "TIMESTAMP WITH TIME ZONE")
    assert "FIRST_VALUE" in sql.upper() and "ARRAY_AGG" not in sql.upper()


@pytest.mark.parametrize("name", sorted(set(GLOT_TARGETS)))
def test_a_date_column_is_filtered_and_bucketed_as_it_is(name):
    """No conversion on a DATE: the bounds are plain dates on the bare column (pushable)."""
    dialect = GlotDialect(name)
    sql, values = query(dialect, "DATE")
    exp = sqlglot.exp
    bound = exp.GTE(this=exp.column("ordered_at", quoted=True),
                    expression=exp.cast(exp.var(":p0"), exp.DataType.build("date")))
    assert bound.sql(dialect=dialect.target) in sql
    assert values["p0"] == date(2026, 1, 1)
    assert "Europe/Berlin" not in values.values()


@pytest.mark.parametrize("backend, name", [("mysql", "mysql"), ("mariadb", "mariadb"),
                                           ("mssql", "tsql"), ("awsathena", "athena"),
                                           ("hive", "spark"), ("postgresql", "postgresql")])
def test_sqlalchemy_backends_map_to_dialects(backend, name):
    dialect = sql_dialect(backend)
    assert dialect is not None and dialect.name == name
    assert sql_dialect("informix") is None


@pytest.mark.parametrize("name", ["mysql", "duckdb", "postgres"])
def test_owner_sql_is_kept_as_written(name):
    """A ``query:`` and an ``expression:`` are in the engine's own syntax: not re-rendered."""
    dialect, _ = DIALECTS[name]
    owner = "(SELECT `ts`, IF(`x` > 0, 1, 0) AS `flag` FROM `t`)" if name == "mysql" else \
        "(SELECT ts, x::INT AS flag FROM t)"
    expression = "IF(`flag` = 1, 2, 0)" if name == "mysql" else "flag::DOUBLE * 2"
    request = SourceRequest("month", "Europe/Paris", 0, (), (), {
        "n": InputSpec("n", "sum", expression=expression)})
    sql, _, _ = build_aggregate_query(owner, "ts", request, dialect, time_kind=dialect.time_kind(""))
    assert f"FROM {owner} AS" in sql and f"({expression}) AS" in sql


def test_sqlglot_is_imported_when_a_query_is_built_not_when_plugins_load():
    """Loading the source plugins (every command, ``validate`` included) does not import
    sqlglot (about 0.1 s); the query of any engine is a sqlglot tree, so building one does."""
    import subprocess
    import sys

    code = ("import sys, kpiforge.plugins.sources.files, kpiforge.plugins.sources.databases; "
            "print('sqlglot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_one_generator_the_dialect_pieces_are_expressions(name):
    """No dialect writes SQL text: each piece is a sqlglot expression of the one tree."""
    from sqlglot import exp

    dialect, _ = DIALECTS[name]
    t = column("__t")
    for grain in ("day", "week", "month", "quarter", "year"):
        assert isinstance(dialect.period_start(t, grain, 0), exp.Expression)
    assert isinstance(dialect.time_missing(t), exp.Expression)
    assert isinstance(dialect.time_bound(t, ">=", datetime(2026, 1, 1), Params(dialect.param_style)),
                      exp.Expression)
