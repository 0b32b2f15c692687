"""The ``spark`` source in local mode against the DuckDB ``parquet`` source on the same files.

Same Parquet file (naive local timestamps, a dimension, values with NULLs), same request:
every aggregation, a filter with a list and NULL, first and last, over grains and with and
without a dimension; Spark's answer must equal DuckDB's to 1e-9 relative. Skipped where pyspark
or Java is missing (pip install -e '.[dev,spark]'; .ci/system-deps installs a headless JRE).
"""

from __future__ import annotations

import math
import shutil
from datetime import date, datetime, timedelta

import duckdb
import pytest

from kpiforge._plugins import load_plugins
from kpiforge.hookspecs import SourceContext
from kpiforge.sources import InputSpec, SourceRequest

pytest.importorskip("pyspark", reason="pyspark is needed for the spark source: pip install -e '.[spark]'")
if shutil.which("java") is None:
    pytest.skip("Java is needed to run Spark (.ci/system-deps installs a headless JRE)",
                allow_module_level=True)

pytestmark = pytest.mark.slow

INPUTS = {
    "orders": InputSpec("orders", "count", column="*"),
    "revenue": InputSpec("revenue", "sum", column="amount", filter={"status": ("paid", None)}),
    "customers": InputSpec("customers", "count_distinct", column="customer"),
    "smallest": InputSpec("smallest", "min", column="amount"),
    "mean": InputSpec("mean", "avg", column="amount"),
    "first_amount": InputSpec("first_amount", "first", column="amount"),
    "last_paid": InputSpec("last_paid", "last", column="amount", filter={"status": "paid"}),
}


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark")
    con = duckdb.connect()
    con.execute("CREATE TABLE t (ts TIMESTAMP, channel VARCHAR, status VARCHAR, amount DOUBLE, "
                "customer VARCHAR)")
    start = datetime(2026, 1, 1, 0, 30)
    rows = [(start + timedelta(hours=i * 23 + i % 5), ("search", "social")[i % 2],
             ("paid", "open", None)[i % 3], None if i % 11 == 0 else float((i * 7) % 50) + 0.25,
             f"c{i % 13}") for i in range(300)]
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
    con.execute(f"COPY t TO '{root / 'orders.parquet'}' (FORMAT parquet)")
    return root


def answer(source, grain, dims, ranges):
    frame = source.fetch(SourceRequest(grain, "Europe/Paris", 0, ranges, dims, INPUTS))
    return {(str(p), *(str(frame.dims[d][i]) for d in dims)):
            {k: float(v[i]) for k, v in frame.inputs.items()} for i, p in enumerate(frame.periods.tolist())}


@pytest.mark.parametrize("grain, dims, ranges", [
    ("month", ("channel",), ()), ("week", (), ((date(2026, 3, 1), date(2026, 6, 1)),)),
    ("day", ("channel",), ((date(2026, 2, 1), date(2026, 2, 20)),)), ("quarter", (), ()),
])
def test_spark_agrees_with_duckdb(parquet, grain, dims, ranges):
    types = load_plugins().source_types
    common = {"time": "ts", "dimensions": ["channel"], "path": "orders.parquet",
              "inputs": {"orders": {"column": "*", "agg": "count"}}}
    context = SourceContext(project_dir=parquet)
    duck = types["parquet"].obj("shop", common, context)
    spark = types["spark"].obj("shop", {**common, "format": "parquet"}, context)
    expected = answer(duck, grain, dims, ranges)
    got = answer(spark, grain, dims, ranges)
    assert expected and got.keys() == expected.keys()
    for key, values in expected.items():
        for name, value in values.items():
            if math.isnan(value):
                assert math.isnan(got[key][name]), (key, name)
            else:
                assert got[key][name] == pytest.approx(value, rel=1e-9), (key, name)
