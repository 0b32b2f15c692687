"""Spark benchmark: the same aggregation by the ``spark`` source (local mode) and by DuckDB.

    python benchmarks/bench_spark.py                    # 10,000,000 rows, 3 repeats
    python benchmarks/bench_spark.py --rows 1000000 --repeats 1

One Parquet file of events (naive local timestamps, a campaign dimension, a cost, an event
type), written by DuckDB and cached in ``benchmarks/_data/``; one request: clicks,
impressions, cost and distinct users by campaign and day. Both sources get the same request,
their answers are checked equal, and the median wall time of each is printed with the ratio.
On one machine Spark is expected to be slower (a JVM, a scheduler, shuffles); the point is that
the same definitions run on a cluster. Spark's start-up is done once before the clock starts.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import duckdb

from kpiforge._plugins import load_plugins
from kpiforge.hookspecs import SourceContext
from kpiforge.sources import SourceRequest

DATA = Path(__file__).parent / "_data"
SETTINGS = {
    "time": "ts", "dimensions": ["campaign"], "path": None,
    "inputs": {
        "impressions": {"column": "*", "agg": "count", "filter": {"event_type": "impression"}},
        "clicks": {"column": "*", "agg": "count", "filter": {"event_type": "click"}},
        "cost": {"column": "cost", "agg": "sum"},
        "users": {"column": "user_id", "agg": "count_distinct"},
    },
}


def make_file(rows: int, folder: Path) -> Path:
    path = folder / f"spark_events_{rows}.parquet"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    duckdb.execute(f"""
        COPY (SELECT TIMESTAMP '2026-10-01' + INTERVAL (i * 2678400 // {rows}) SECOND AS ts,
                     'c' || (i % 200) AS campaign,
                     CASE WHEN i % 20 = 0 THEN 'click' ELSE 'impression' END AS event_type,
                     (i % 97) / 100.0 AS cost, 'u' || (i * 7919 % 50000) AS user_id
              FROM range({rows}) t(i)) TO '{path}' (FORMAT parquet)""")
    return path


def timed(source, request, repeats: int) -> tuple[float, dict]:
    times, frame = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        frame = source.fetch(request)
        times.append(time.perf_counter() - start)
    assert frame is not None
    answer = {(str(p), str(frame.dims["campaign"][i])): {k: float(v[i]) for k, v in frame.inputs.items()}
              for i, p in enumerate(frame.periods.tolist())}
    return statistics.median(times), answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    path = make_file(args.rows, args.data)
    types = load_plugins().source_types
    context = SourceContext(project_dir=path.parent)
    settings = {**SETTINGS, "path": path.name}
    duck = types["parquet"].obj("events", settings, context)
    spark = types["spark"].obj("events", {**settings, "format": "parquet"}, context)
    request = SourceRequest("day", "Europe/Paris", 0, (), ("campaign",), duck.inputs)
    spark.fetch(SourceRequest("day", "Europe/Paris", 0, (), (), {}))  # start Spark, untimed
    duck_time, duck_answer = timed(duck, request, args.repeats)
    spark_time, spark_answer = timed(spark, request, args.repeats)
    assert duck_answer.keys() == spark_answer.keys(), "the two sources disagree on the groups"
    for key, values in duck_answer.items():
        for name, value in values.items():
            assert math.isclose(spark_answer[key][name], value, rel_tol=1e-9), (key, name)
    print(f"{args.rows:,} rows, {len(duck_answer):,} groups, median of {args.repeats}; answers agree")
    print(f"duckdb (parquet source)  {duck_time:8.3f} s")
    print(f"spark  (local[*])        {spark_time:8.3f} s   {spark_time / duck_time:.1f}x duckdb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
