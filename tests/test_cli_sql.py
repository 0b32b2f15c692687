"""``kpiforge sql``: the printed query, run on DuckDB and PostgreSQL, gives what ``kpiforge run``
gives; other dialects parse back with sqlglot; what has no SQL form is refused with a message."""

from __future__ import annotations

import json
import math
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
import sqlglot
from click.testing import CliRunner

from kpiforge.cli import build_cli
from kpiforge._plugins import load_plugins
from tests.conftest_mariadb import mariadb_url  # noqa: F401 - the fixture
from tests.conftest_postgres import postgres_url  # noqa: F401 - the fixture

KPIS = {
    "aov": ("revenue / orders", ["revenue", "orders"]),
    "refund_rate": ("refunds / orders", ["refunds", "orders"]),
    "refunds_per_paid": ("refunds / paid_orders", ["refunds", "paid_orders"]),  # 0 paid: NULL
    "aov_score": ("aov * 2 - refund_rate / 10", []),  # uses other KPIs: inlined
    "capped": ("min(aov, 40) if orders >= 3 else max(0 - aov, -5)", ["orders"]),
    "rounded": ("round(aov, 1)", []),
    "blend": ("safe_div(revenue, paid_orders, -1) + abs(0 - first_amount) / orders"
              " + coalesce(customers / orders, 0)",
              ["revenue", "paid_orders", "first_amount", "customers", "orders"]),
}
INPUTS = """\
    dimensions: [channel]
    inputs:
      orders: {column: "*", agg: count}
      revenue: {column: amount, agg: sum}
      refunds: {column: "*", agg: count, filter: {status: refunded}}
      paid_orders: {column: "*", agg: count, filter: {status: paid}}
      first_amount: {column: amount, agg: first}
      customers: {column: customer, agg: count_distinct}
"""


def rows():
    out = []
    start = datetime(2026, 1, 3, 5, 0, tzinfo=timezone.utc)
    for i in range(120):
        ts = start + timedelta(hours=i * 31 + i % 7)
        status = "paid" if i % 3 else ("refunded" if i % 2 else "open")
        if 50 <= i < 100:  # a stretch of months without any paid order: division by zero
            status = "open" if i % 2 else "refunded"
        out.append((ts, ("search", "social")[i % 2], status, float(5 + (i * 13) % 40), f"c{i % 9}"))
    return out


def write_definitions(folder: Path) -> None:
    folder.mkdir()
    for kpi, (formula, inputs) in KPIS.items():
        declared = "\n".join(f"  {i}: {{description: {i}, unit: count}}" for i in inputs)
        folder.joinpath(f"{kpi}.yaml").write_text(textwrap.dedent(f"""\
            id: {kpi}
            name: {kpi}
            description: test KPI
            category: acquisition
            owner: team
            status: draft
            version: 1
            formula: {formula}
            unit: ratio
            direction: higher_is_better
            """) + (f"inputs:\n{declared}\n" if inputs else ""))


@pytest.fixture(scope="module")
def duckdb_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("sqlcli")
    con = duckdb.connect(str(root / "shop.duckdb"))
    con.execute("CREATE TABLE orders (ts TIMESTAMPTZ, channel VARCHAR, status VARCHAR, amount DOUBLE, "
                "customer VARCHAR)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", rows())
    con.close()
    write_definitions(root / "kpis")
    (root / "kpiforge.yaml").write_text(
        "definitions: [kpis/]\ntimezone: Europe/Paris\nsources:\n  shop:\n    type: duckdb\n"
        "    path: shop.duckdb\n    table: orders\n    time: ts\n" + textwrap.indent(INPUTS, ""))
    return root / "kpiforge.yaml"


def cli(*args: str):
    return CliRunner().invoke(build_cli(load_plugins()), list(args), obj=load_plugins())


def kpiforge_run(project: Path, *args: str) -> dict:
    result = cli("run", "--project", str(project), "--format", "json", "--no-alerts", *args)
    assert result.exit_code == 0, result.output
    values = {}
    for record in json.loads(result.stdout)["results"]:
        values[(record["kpi"], record["period"], *record["slice"].values())] = record["value"]
    return values


def printed(project: Path, *args: str) -> list[str]:
    result = cli("sql", "--project", str(project), *args)
    assert result.exit_code == 0, result.output
    return [s for s in result.stdout.split(";\n") if s.strip()]


def label(period, grain: str) -> str:
    text = str(period)[:10]
    return {"month": text[:7], "year": text[:4], "day": text}.get(grain, text)


def compare(sql_rows: list[tuple], names: list[str], expected: dict, grain: str, dims: int) -> None:
    got = {}
    for row in sql_rows:
        for kpi, value in zip(names[1 + dims:], row[1 + dims:]):
            got[(kpi, label(row[0], grain), *row[1:1 + dims])] = value
    wanted = {k: v for k, v in expected.items() if v is not None or k in got}
    assert wanted, "the run computed nothing: the comparison would prove nothing"
    for key, value in wanted.items():
        other = got[key]
        if value is None:
            assert other is None or math.isnan(other), key
        else:
            assert other == pytest.approx(value, rel=1e-9), key
    assert any(v is None for v in wanted.values())  # a division by zero was really met


def run_duckdb(statements: list[str], project: Path) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect(str(project.parent / "shop.duckdb"), read_only=True)
    for statement in statements[:-1]:
        con.execute(statement)
    cursor = con.execute(statements[-1])
    names = [d[0] for d in cursor.description]
    return names, cursor.fetchall()


@pytest.mark.parametrize("args, grain, dims", [
    (["--grain", "month", "--by", "channel"], "month", 1),
    (["--grain", "month"], "month", 0),
    (["--period", "2026-03", "--grain", "day", "--by", "channel"], "day", 1),
])
def test_duckdb_sql_gives_the_run_values(duckdb_project, args, grain, dims):
    kpis = [a for k in KPIS if k != "rounded" for a in ("--kpi", k)]
    statements = printed(duckdb_project, *kpis, *args)
    assert len(statements) == 2  # the session's time zone, then the ONE query
    names, result = run_duckdb(statements, duckdb_project)
    assert names[:1 + dims] == ["period", *(["channel"] if dims else [])]
    run_args = list(args) if "--period" in args else [*args, "--from", "2026-01-01", "--to", "2026-12-31"]
    compare(result, names, kpiforge_run(duckdb_project, *kpis, *run_args), grain, dims)


@pytest.mark.slow
@pytest.mark.parametrize("server, ts_type", [("postgres_url", "timestamptz"), ("mariadb_url", "timestamp")])
def test_server_sql_gives_the_run_values(duckdb_project, server, ts_type, request, tmp_path):
    """The printed SQL of a ``sql`` source on PostgreSQL and on MariaDB (rendered by sqlglot),
    run on that server, gives what ``kpiforge run`` gives."""
    sa = pytest.importorskip("sqlalchemy")
    url = request.getfixturevalue(server)
    engine = sa.create_engine(url)
    with engine.begin() as con:
        if "mysql" in url:
            con.execute(sa.text("SET time_zone = '+00:00'"))  # TIMESTAMP takes UTC values here
        con.execute(sa.text("DROP TABLE IF EXISTS orders"))
        con.execute(sa.text(f"CREATE TABLE orders (ts {ts_type} NULL, channel varchar(20), "
                            "status varchar(20), amount double precision, customer varchar(20))"))
        values = [dict(zip(["ts", "channel", "status", "amount", "customer"], r)) for r in rows()]
        if "mysql" in url:
            values = [{**v, "ts": v["ts"].replace(tzinfo=None)} for v in values]
        con.execute(sa.text("INSERT INTO orders VALUES (:ts, :channel, :status, :amount, :customer)"),
                    values)
    project = tmp_path / "kpiforge.yaml"
    (tmp_path / "kpis").symlink_to(duckdb_project.parent / "kpis")
    project.write_text("definitions: [kpis/]\ntimezone: Europe/Paris\nsources:\n  shop:\n    type: sql\n"
                       f"    url: {url}\n    table: orders\n    time: ts\n" + INPUTS)
    kpis = [a for k in KPIS if k != "rounded" for a in ("--kpi", k)]
    statements = printed(project, *kpis, "--grain", "month", "--by", "channel")
    with engine.connect() as con:
        for statement in statements[:-1]:
            con.execute(sa.text(statement))
        result = con.execute(sa.text(statements[-1]))
        names, got = list(result.keys()), [tuple(r) for r in result.fetchall()]
    engine.dispose()
    expected = kpiforge_run(project, *kpis, "--grain", "month", "--by", "channel",
                            "--from", "2026-01-01", "--to", "2026-12-31")
    compare(got, names, expected, "month", 1)


@pytest.mark.parametrize("dialect, read", [("bigquery", "bigquery"), ("snowflake", "snowflake"),
                                           ("mysql", "mysql"), ("tsql", "tsql"), ("postgres", "postgres")])
def test_other_dialects_parse_back(duckdb_project, dialect, read):
    statements = printed(duckdb_project, "--kpi", "aov_score", "--kpi", "blend", "--by", "channel",
                         "--period", "2026-03", "--dialect", dialect)
    tree = sqlglot.parse_one(statements[-1], read=read)
    assert [s.alias_or_name for s in tree.selects] == ["period", "channel", "aov_score", "blend"]
    assert "NULLIF" in statements[-1].upper()


@pytest.mark.parametrize("args, message", [
    (["--kpi", "nope"], "unknown KPI 'nope'"),
    (["--kpi", "aov", "--by", "country"], "unknown dimension 'country'"),
    (["--kpi", "aov", "--period", "2026-13"], "2026-13"),
    (["--kpi", "rounded"], "KPI 'rounded': the function round() is not written as SQL"),
])
def test_refusals_are_clear(duckdb_project, args, message):
    result = cli("sql", "--project", str(duckdb_project), *args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_total_is_refused(tmp_path):
    project = Path(__file__).parent.parent / "examples" / "demo" / "kpiforge.yaml"
    if not project.exists():
        pytest.skip("no demo project")
    result = cli("sql", "--project", str(project), "--kpi", "traffic_source_share", "--by", "channel")
    assert result.exit_code == 1
    assert "total(x) is not written as SQL" in result.output
