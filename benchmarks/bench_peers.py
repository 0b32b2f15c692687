"""Peers benchmark: kpiforge against MetricFlow, kpi-engine and one hand-written DuckDB query.

    python benchmarks/bench_peers.py                   # 1e4, 1e6 and 1e7 ad rows, 5 runs each
    python benchmarks/bench_peers.py --quick           # 1e4 rows only
    python benchmarks/bench_peers.py --sizes 1000000 --only floor,kpiforge-cli,metricflow
    python benchmarks/bench_peers.py --sizes 1e7 --only kpiforge   # kpiforge and the floor only
    python benchmarks/bench_peers.py --no-install      # peers only if their venvs are cached

The job: 5 KPIs (CTR, CPC, conversion rate, CPA, ROAS) by channel and ISO week over 90 days of
ad statistics (one Parquet file per size, cached in ``benchmarks/_data/``: columns day (DATE),
channel, campaign, impressions, clicks, cost, conversions, revenue). Some weeks and channels
have a zero denominator (email has no cost and no traffic in its first two weeks, video never
converts), so the answer has undefined values: those are null, never 0.

Each contender is a whole process (interpreter start, imports, reading the file, computing and
printing the answer), timed from the outside: its wall time and its process time (the user +
system CPU seconds of all its threads, from ``os.wait4``; the issue's 1.3x target against the
floor is judged on it, since other work on a shared machine disturbs it far less). The target
is the command line's, the issue's job; the Python API's ratio is printed as information: a
script's numpy starts OpenBLAS with one thread per core, each spinning about 0.1 s of CPU at
start-up, which the command line avoids (``OPENBLAS_NUM_THREADS=1``) and a library must leave
to its host. Each figure
is the median of ``--repeats`` runs, taken round robin after a warm-up run, with the floor
measured in the same run. The warm-up also fills kpiforge's caches (schema verdicts, rendered
queries, in a cache folder of this run's own; docs/cli.md), as for any job run more than once,
the way dbt's partial parse serves MetricFlow's runs after its first:

* floor: one DuckDB query, written the way a person would (the week computed once per row in a
  subquery, the sums in the outer query, NULLIF for the denominators);
* floor-by-day: the same query summing per day first, then per week (what kpiforge's query
  does): information, not a target, so that the README can say what a person could get back;
* kpiforge-cli: ``kpiforge run --format json`` on a generated project;
* kpiforge-api: ``kpiforge.Project.load(...).run(...)`` in a small script;
* metricflow: ``mf query`` (dbt-metricflow on dbt-duckdb) on a generated dbt project;
* metricflow-api: MetricFlow's Python API on the semantic manifest dbt wrote (it compiles the
  query to DuckDB SQL, which DuckDB runs): MetricFlow without dbt's start-up, the fastest way a
  MetricFlow user has; the target "faster than MetricFlow" is judged against the faster of the two;
* kpi-engine: the PyPI package kpi-engine 1.0.2 on the same data.

Peers are never dependencies of kpiforge: each lives in its own virtual environment that this
script creates from the package registry with pip, cached under ``--venvs`` (default
``benchmarks/_data/venvs``) so reruns are fast. kpiforge runs from the interpreter running this
script when that imports kpiforge from this checkout (``make bench-peers`` uses the project's
.venv, an editable install of the checkout), else from a venv with a non-editable install of the
checkout (``--kpiforge-venv`` forces that). A peer that cannot be installed or run is reported
with the reason, and the others go on.

Every contender's numbers are compared with the floor's (relative tolerance 1e-9, null only where
the floor has null); disagreements are findings printed in the table, not errors.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "_data"
DATA_VERSION = 1  # bump when the generator changes, so cached files are rebuilt
FIRST_DAY = date(2026, 6, 29)  # a Monday: 90 days are 12 whole ISO weeks and 6 days
DAYS = 90
CHANNELS = ["search", "social", "display", "video", "email"]
N_CAMPAIGNS = 40
KPIS = ["ctr", "cpc", "cvr", "cpa", "roas"]
SIZES = [10_000, 1_000_000, 10_000_000]
CONTENDERS = ["floor", "floor-by-day", "kpiforge-cli", "kpiforge-api", "metricflow", "metricflow-api", "kpi-engine"]
KPIFORGE_CONTENDERS = ["kpiforge-cli", "kpiforge-api"]  # what --only kpiforge means
TOLERANCE = 1e-9
# What each peer's venv gets from the registry; the venv is rebuilt when this changes.
PEER_REQUIREMENTS = {
    # dbt-core 1.12 needs dbt-core-experimental-parser, whose build downloads a wheel from
    # outside the package registry; 1.11 is within dbt-metricflow 0.15's range and has no such step
    "metricflow": ["dbt-metricflow==0.15.0", "dbt-core>=1.11,<1.12", "dbt-duckdb"],
    "kpi-engine": ["kpi-engine[alerts]==1.0.2", "pyarrow"]  # its package imports requests unconditionally,
}

Key = tuple[str, str, str]  # (kpi, ISO week's Monday as YYYY-MM-DD, channel)
Table = dict[Key, "float | None"]


# -- data -------------------------------------------------------------------------------------
def data_path(rows: int, data_dir: Path = DATA) -> Path:
    return data_dir / f"ads_v{DATA_VERSION}_{rows}.parquet"


def generate(rows: int, data_dir: Path = DATA, seed: int = 11) -> Path:
    """Write ``rows`` ad rows (one campaign on one day each) spread over the 90 days; cached.

    Deterministic for a given size and seed. Written in chunks so memory stays flat at 1e7.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = data_path(rows, data_dir)
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    campaigns = [f"cmp-{i:02d}" for i in range(N_CAMPAIGNS)]
    campaign_channel = np.arange(N_CAMPAIGNS) % len(CHANNELS)
    ctr = rng.uniform(0.01, 0.05, N_CAMPAIGNS)
    cvr = rng.uniform(0.02, 0.08, N_CAMPAIGNS)
    cpc = rng.uniform(0.2, 2.5, N_CAMPAIGNS)
    video, email = CHANNELS.index("video"), CHANNELS.index("email")
    schema = pa.schema([("day", pa.date32()), ("channel", pa.string()), ("campaign", pa.string()),
                        ("impressions", pa.int64()), ("clicks", pa.int64()), ("cost", pa.float64()),
                        ("conversions", pa.int64()), ("revenue", pa.float64())])
    epoch = (FIRST_DAY - date(1970, 1, 1)).days
    tmp = path.with_suffix(".tmp")
    chunk = 1_000_000
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for first in range(0, rows, chunk):
            n = min(chunk, rows - first)
            # rows in time order, every day of the 90 has rows at every size
            day = (np.arange(first, first + n, dtype=np.int64) * DAYS) // rows
            camp = rng.integers(0, N_CAMPAIGNS, n)
            channel = campaign_channel[camp]
            impressions = rng.poisson(200, n)
            clicks = rng.binomial(impressions, ctr[camp])
            conversions = rng.binomial(clicks, cvr[camp])
            conversions[channel == video] = 0  # video never converts: CPA undefined
            cost = np.round(clicks * cpc[camp] * rng.lognormal(0, 0.2, n), 2)
            revenue = np.round(conversions * rng.lognormal(np.log(60), 0.4, n), 2)
            is_email = channel == email
            cost[is_email] = 0.0  # email costs nothing: ROAS undefined
            dark = is_email & (day < 14)  # email not yet sending in its first two weeks
            for column in (impressions, clicks, conversions):
                column[dark] = 0
            revenue[dark] = 0.0
            names = np.array(CHANNELS)[channel]
            writer.write_table(pa.table({
                "day": pa.array((day + epoch).astype(np.int32), pa.date32()),
                "channel": pa.array(names, pa.string()),
                "campaign": pa.array(np.array(campaigns)[camp], pa.string()),
                "impressions": pa.array(impressions, pa.int64()),
                "clicks": pa.array(clicks, pa.int64()),
                "cost": pa.array(cost, pa.float64()),
                "conversions": pa.array(conversions, pa.int64()),
                "revenue": pa.array(revenue, pa.float64()),
            }, schema=schema))
    tmp.rename(path)
    return path


def last_day() -> date:
    return FIRST_DAY + timedelta(days=DAYS - 1)


# -- the floor ------------------------------------------------------------------------------
# The best query a person would write: the week is computed once per row in a subquery (a DATE
# is already local time, so there is nothing to convert), the sums are taken once per week and
# channel, and each KPI divides the sums with NULLIF so that a zero denominator is null.
# the five KPIs from the sums: shared by both hand-written queries
KPI_SELECT = """
SELECT week, channel,
       clicks / NULLIF(impressions, 0) * 100 AS ctr,
       cost / NULLIF(clicks, 0) AS cpc,
       conversions / NULLIF(clicks, 0) * 100 AS cvr,
       cost / NULLIF(conversions, 0) AS cpa,
       revenue / NULLIF(cost, 0) AS roas
FROM ("""
FLOOR_SQL = KPI_SELECT + """
  SELECT week, channel,
         CAST(sum(impressions) AS DOUBLE) AS impressions, CAST(sum(clicks) AS DOUBLE) AS clicks,
         sum(cost) AS cost, CAST(sum(conversions) AS DOUBLE) AS conversions,
         sum(revenue) AS revenue
  FROM (SELECT date_trunc('week', day) AS week, channel, impressions, clicks, cost,
               conversions, revenue
        FROM read_parquet($path)
        WHERE day BETWEEN $first AND $last)
  GROUP BY week, channel
)
ORDER BY week, channel
"""

# The same answer summed per day first, then per week: the week is computed once per day and
# channel, not once per row. This is what kpiforge's query does (SQL sources group by local day
# first when every aggregate adds up); measured beside the floor so that the README can say how
# much of kpiforge's ratio a hand-written query could get back.
FLOOR_BY_DAY_SQL = KPI_SELECT + """
  SELECT date_trunc('week', day) AS week, channel,
         CAST(sum(impressions) AS DOUBLE) AS impressions, CAST(sum(clicks) AS DOUBLE) AS clicks,
         sum(cost) AS cost, CAST(sum(conversions) AS DOUBLE) AS conversions,
         sum(revenue) AS revenue
  FROM (SELECT day, channel, sum(impressions) AS impressions, sum(clicks) AS clicks,
               sum(cost) AS cost, sum(conversions) AS conversions, sum(revenue) AS revenue
        FROM read_parquet($path)
        WHERE day BETWEEN $first AND $last
        GROUP BY day, channel)
  GROUP BY week, channel
)
ORDER BY week, channel
"""

FLOOR_SCRIPT = """
import json, sys
import duckdb
path, first, last = sys.argv[1:4]
rows = duckdb.connect().execute(SQL, {"path": path, "first": first, "last": last}).fetchall()
kpis = KPIS
json.dump([[k, str(r[0])[:10], r[1], r[2 + i]] for r in rows for i, k in enumerate(kpis)],
          sys.stdout)
"""


# -- kpiforge ----------------------------------------------------------------------------------
KPIFORGE_KPIS = """\
# generated by benchmarks/bench_peers.py
kpis:
  - id: ctr
    name: Click-through rate
    formula: clicks / impressions * 100
    inputs: {clicks: {unit: count}, impressions: {unit: count}}
    unit: percent
    direction: higher_is_better
  - id: cpc
    name: Cost per click
    formula: cost / clicks
    inputs: {cost: {unit: currency}, clicks: {unit: count}}
    unit: currency
    direction: lower_is_better
  - id: cvr
    name: Conversion rate
    formula: conversions / clicks * 100
    inputs: {conversions: {unit: count}, clicks: {unit: count}}
    unit: percent
    direction: higher_is_better
  - id: cpa
    name: Cost per acquisition
    formula: cost / conversions
    inputs: {cost: {unit: currency}, conversions: {unit: count}}
    unit: currency
    direction: lower_is_better
  - id: roas
    name: Return on ad spend
    formula: revenue / cost
    inputs: {revenue: {unit: currency}, cost: {unit: currency}}
    unit: ratio
    direction: higher_is_better
"""

KPIFORGE_PROJECT = """\
# generated by benchmarks/bench_peers.py
definitions: [kpis/]
currency: EUR
sources:
  ads:
    type: parquet
    path: PARQUET
    time: day
    dimensions: [channel]
    inputs:
      impressions: {agg: sum}
      clicks: {agg: sum}
      cost: {agg: sum}
      conversions: {agg: sum}
      revenue: {agg: sum}
"""

KPIFORGE_API_SCRIPT = """
import json, sys
import kpiforge
project_file, first, last = sys.argv[1:4]
result = kpiforge.Project.load(project_file).run(
    grain="week", start=first, end=last, by=["channel"], kpis=KPIS)
json.dump([[r.kpi, r.period, r.slice["channel"], r.value] for r in result], sys.stdout)
"""


def kpiforge_project(path: Path) -> Path:
    """The project directory for one data file (rewritten only when its text changes)."""
    root = path.parent / f"{path.stem}.kpiforge"
    (root / "kpis").mkdir(parents=True, exist_ok=True)
    write_if_changed(root / "kpis" / "bench.yaml", KPIFORGE_KPIS)
    write_if_changed(root / "kpiforge.yaml", KPIFORGE_PROJECT.replace("PARQUET", str(path)))
    return root / "kpiforge.yaml"


def iso_week_monday(label: str) -> str:
    """``2026-W27`` -> ``2026-06-29``."""
    year, week = label.split("-W")
    return date.fromisocalendar(int(year), int(week), 1).isoformat()


# -- MetricFlow -----------------------------------------------------------------------------
DBT_PROJECT = """\
name: bench_peers
version: "1.0"
config-version: 2
profile: bench_peers
model-paths: [models]
"""

DBT_PROFILES = """\
bench_peers:
  target: bench
  outputs:
    bench:
      type: duckdb
      path: DATABASE
      threads: 1
"""

# The model is a view over the Parquet file, so that every query reads the file, like the others.
DBT_MODEL = "select * from read_parquet('PARQUET')\n"
DBT_TIME_SPINE = """\
select cast(range as date) as date_day
from range(date '2026-01-01', date '2027-12-31', interval 1 day)
"""

MF_SEMANTIC = """\
semantic_models:
  - name: ads
    model: ref('ads')
    defaults:
      agg_time_dimension: ad_day
    entities:
      - name: ad_row
        type: primary
        expr: "campaign || '/' || cast(day as varchar)"
    dimensions:
      - name: ad_day  # "day" is a reserved word in MetricFlow
        expr: day
        type: time
        type_params: {time_granularity: day}
      - name: channel
        type: categorical
    measures:
      - {name: impressions, agg: sum}
      - {name: clicks, agg: sum}
      - {name: cost, agg: sum}
      - {name: conversions, agg: sum}
      - {name: revenue, agg: sum}

models:
  - name: metricflow_time_spine
    time_spine:
      standard_granularity_column: date_day
    columns:
      - name: date_day
        granularity: day

metrics:
  # a ratio metric divides two metrics (NULLIF on the denominator); simple metrics expose the sums
  - {name: impressions, label: impressions, type: simple, type_params: {measure: impressions}}
  - {name: clicks, label: clicks, type: simple, type_params: {measure: clicks}}
  - {name: cost, label: cost, type: simple, type_params: {measure: cost}}
  - {name: conversions, label: conversions, type: simple, type_params: {measure: conversions}}
  - {name: revenue, label: revenue, type: simple, type_params: {measure: revenue}}
  - {name: ctr_ratio, label: ctr ratio, type: ratio,
     type_params: {numerator: clicks, denominator: impressions}}
  - {name: cvr_ratio, label: cvr ratio, type: ratio,
     type_params: {numerator: conversions, denominator: clicks}}
  - name: ctr
    label: CTR
    type: derived
    type_params: {expr: ctr_ratio * 100, metrics: [{name: ctr_ratio}]}
  - name: cvr
    label: Conversion rate
    type: derived
    type_params: {expr: cvr_ratio * 100, metrics: [{name: cvr_ratio}]}
  - {name: cpc, label: CPC, type: ratio, type_params: {numerator: cost, denominator: clicks}}
  - {name: cpa, label: CPA, type: ratio, type_params: {numerator: cost, denominator: conversions}}
  - {name: roas, label: ROAS, type: ratio, type_params: {numerator: revenue, denominator: cost}}
"""


# MetricFlow's own Python API, without dbt's CLI: the semantic manifest dbt wrote, MetricFlow's
# engine compiling the query to DuckDB SQL (explain), and DuckDB running it on dbt's database.
# The engine wants a SqlClient only for its dialect here, so a stub names the engine and its
# renderer; the query has no bind parameters (the time range is rendered as literals).
METRICFLOW_API_SCRIPT = """
import json, sys
from datetime import datetime
from pathlib import Path
import duckdb
from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest
from metricflow.protocols.sql_client import SqlEngine
from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer
from metricflow_semantics.model.dbt_manifest_parser import parse_manifest_from_dbt_generated_manifest
from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup
root, first, last = sys.argv[1:4]
class DuckDbDialect:
    sql_engine_type = SqlEngine.DUCKDB
    sql_plan_renderer = DuckDbSqlPlanRenderer()
    def render_bind_parameter_key(self, key):
        return "$" + key
manifest = parse_manifest_from_dbt_generated_manifest(
    Path(root, "target", "semantic_manifest.json").read_text())
engine = MetricFlowEngine(SemanticManifestLookup(manifest), DuckDbDialect())
request = MetricFlowQueryRequest.create(
    metric_names=KPIS, group_by_names=["metric_time__week", "ad_row__channel"],
    time_constraint_start=datetime.fromisoformat(first),
    time_constraint_end=datetime.fromisoformat(last))
statement = engine.explain(request).sql_statement
assert not statement.bind_parameter_set.param_items
cursor = duckdb.connect(str(Path(root, "bench.duckdb")), read_only=True).execute(statement.sql)
names = [d[0].lower() for d in cursor.description]
rows = [dict(zip(names, row)) for row in cursor.fetchall()]
json.dump([[k, str(r["metric_time__week"])[:10], r["ad_row__channel"], r[k]] for r in rows for k in KPIS],
          sys.stdout)
"""

def metricflow_project(path: Path) -> Path:
    root = path.parent / f"{path.stem}.dbt"
    (root / "models").mkdir(parents=True, exist_ok=True)
    write_if_changed(root / "dbt_project.yml", DBT_PROJECT)
    write_if_changed(root / "profiles.yml", DBT_PROFILES.replace("DATABASE", str(root / "bench.duckdb")))
    write_if_changed(root / "models" / "ads.sql", DBT_MODEL.replace("PARQUET", str(path)))
    write_if_changed(root / "models" / "metricflow_time_spine.sql", DBT_TIME_SPINE)
    write_if_changed(root / "models" / "semantic.yml", MF_SEMANTIC)
    return root


# -- kpi-engine -------------------------------------------------------------------------------
# kpi-engine computes one value per KPI over one DataFrame (its periods are months, quarters or
# relative ones, and it has no dimensions), so the job is written the way its README shows it:
# the slices come from pandas, and each (week, channel) slice is one KPIEngine.run. Its "rate"
# aggregation is sum(numerator) / sum(denominator), 0.0 when the denominator is 0; every value is
# rounded to 4 decimals. The percentages take a x100 numerator column, so that no derived KPI
# (computed from the already rounded ratio) adds a second rounding. None of the columns passed
# in has a name kpi-engine takes for a date, so it does not filter rows by its own period.
KPI_ENGINE_SCRIPT = """
import json, sys
import pandas as pd
from kpi_engine import KPIDefinition, KPIEngine
path, first, last = sys.argv[1:4]
frame = pd.read_parquet(path, columns=["day", "channel", "impressions", "clicks", "cost",
                                       "conversions", "revenue"])
day = pd.to_datetime(frame["day"])
frame = frame[(day >= pd.Timestamp(first)) & (day <= pd.Timestamp(last))]
day = pd.to_datetime(frame["day"])
frame = frame.assign(week=(day - pd.to_timedelta(day.dt.dayofweek, unit="D")).dt.strftime("%Y-%m-%d"),
                     clicks100=frame["clicks"] * 100, conversions100=frame["conversions"] * 100)
frame = frame.drop(columns=["day"])
def rate(name, numerator, denominator):
    return KPIDefinition(name=name, label=name, source="dataframe", aggregation="rate",
                         query="ads." + numerator, denominator_query=denominator)
kpis = [rate("ctr", "clicks100", "impressions"), rate("cpc", "cost", "clicks"),
        rate("cvr", "conversions100", "clicks"), rate("cpa", "cost", "conversions"),
        rate("roas", "revenue", "cost")]
out = []
for (week, channel), group in frame.groupby(["week", "channel"], sort=True):
    for result in KPIEngine(kpis, dataframes={"ads": group}).run("2026-07"):
        out.append([result.name, week, channel, result.value])
json.dump(out, sys.stdout)
"""


# -- helpers ----------------------------------------------------------------------------------
def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def script(template: str, **names: Any) -> str:
    """A worker script: the template with its upper-case names bound to Python literals."""
    head = "".join(f"{name} = {value!r}\n" for name, value in names.items())
    return head + textwrap.dedent(template)


@dataclass(frozen=True)
class Setup:
    """How to run one contender on one data file: the command, its working directory and
    environment, and how to read its output into a table."""

    command: list[str]
    parse: Any  # (stdout text, working dir) -> Table
    cwd: Path | None = None
    env: dict[str, str] | None = None


@dataclass
class Outcome:
    name: str
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process time: user + system CPU seconds
    peak: int = 0
    problem: str | None = None  # why it could not run
    finding: str | None = None  # how its numbers differ from the floor's
    stray: str | None = None  # what it printed on stdout besides its answer


# -- virtual environments -----------------------------------------------------------------------
class VenvError(Exception):
    pass


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, requirements: list[str], log: Any = print, stamp_extra: str = "",
                create: bool = True) -> Path:
    """A venv at ``venv`` with ``requirements`` pip-installed; reused when its stamp matches.
    ``create=False``: a VenvError instead of creating or rebuilding it."""
    stamp = venv / ".bench-peers-requirements"
    wanted = "\n".join([*requirements, stamp_extra]) + "\n"
    if stamp.exists() and stamp.read_text() == wanted and venv_python(venv).exists():
        return venv_python(venv)
    if not create:
        raise VenvError(f"no cached venv with {' '.join(requirements)} in {venv} (--no-install)")
    if venv.exists():
        shutil.rmtree(venv)
    log(f"creating {venv} with pip install {' '.join(requirements)} (once; cached)")
    started = time.perf_counter()
    for command in ([sys.executable, "-m", "venv", str(venv)],
                    [str(venv_python(venv)), "-m", "pip", "install", "--quiet",
                     "--disable-pip-version-check", *requirements]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise VenvError(f"{' '.join(command[:4])}... failed:\n{(done.stderr or done.stdout)[-1500:]}")
    stamp.write_text(wanted)
    log(f"  ready in {time.perf_counter() - started:.0f} s")
    return venv_python(venv)


# what the wheel is built from: a change elsewhere (benchmarks, tests) keeps the cached venv
PACKAGED = ["pyproject.toml", "engine", "plugins", "definitions", "schemas"]


def checkout_fingerprint() -> str:
    """The packaged files as committed plus their uncommitted changes, so that the non-editable
    install follows the checkout."""
    def git(*command: str) -> str:
        return subprocess.run(["git", *command], cwd=REPO, capture_output=True, text=True).stdout

    trees = git("rev-parse", *[f"HEAD:{path}" for path in PACKAGED])
    diff = git("diff", "HEAD", "--", *PACKAGED)
    return hashlib.sha256((trees + diff).encode()).hexdigest()[:16]


def kpiforge_python(venvs: Path, force_venv: bool, log: Any = print) -> tuple[Path, str]:
    """(interpreter with kpiforge, which install it is)."""
    if not force_venv:
        try:
            import kpiforge
            here = Path(kpiforge.__file__).resolve()
        except ImportError:
            here = None
        if here is not None and REPO in here.parents:
            return Path(sys.executable), f"this interpreter's install of the checkout ({sys.executable})"
    # the stamp carries the checkout's state, so that an edit reinstalls it
    python = ensure_venv(venvs / "kpiforge", [str(REPO)], log, stamp_extra=checkout_fingerprint())
    return python, f"non-editable install of the checkout in {venvs / 'kpiforge'}"


def compile_checkout() -> None:
    """Byte-compile the checkout's packages, as installing kpiforge does. With
    PYTHONDONTWRITEBYTECODE set (as on some CI machines) an editable install never writes its
    .pyc files, so every kpiforge process would compile all of its modules again (about 0.15 s
    of CPU here), which no installed kpiforge does; the peers' and DuckDB's installed packages
    are compiled by pip."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "engine", "plugins"], cwd=REPO, check=True,
                   capture_output=True)
    print("kpiforge: byte-compiled the checkout (PYTHONDONTWRITEBYTECODE is set; an install is "
          "compiled)")


# -- parsing each contender's answer -----------------------------------------------------------
def number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    value = float(value)
    return None if math.isnan(value) else value


def stray_output(text: str) -> str | None:
    """What a worker script printed besides its answer (the answer is its last line)."""
    before = text.rstrip("\n").rpartition("\n")[0].strip()
    return before or None


def parse_rows(text: str, _cwd: Path | None = None) -> Table:
    """A JSON list of [kpi, week, channel, value] (the floor, the API and kpi-engine scripts),
    on the last line of the output."""
    table: Table = {}
    for kpi, week, channel, value in json.loads(text.rstrip("\n").rpartition("\n")[2]):
        week = iso_week_monday(week) if "-W" in week else week[:10]
        table[(kpi, week, channel)] = number(value)
    return table


def parse_kpiforge_json(text: str, _cwd: Path | None = None) -> Table:
    return {(r["kpi"], iso_week_monday(r["period"]), r["slice"]["channel"]): number(r["value"])
            for r in json.loads(text)["results"]}


def parse_metricflow_csv(_text: str, cwd: Path | None) -> Table:
    assert cwd is not None
    table: Table = {}
    with open(cwd / "mf_out.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            row = {name.lower(): value for name, value in row.items()}
            week, channel = row["metric_time__week"], row["ad_row__channel"]
            for kpi in KPIS:
                table[(kpi, week[:10], channel)] = number(row[kpi])
    return table


# -- comparison -----------------------------------------------------------------------------
def compare(floor: Table, other: Table, tolerance: float = TOLERANCE) -> str | None:
    """None when ``other`` has the floor's numbers, else a short account of how it differs."""
    missing = set(floor) - set(other)
    extra = set(other) - set(floor)
    zero_for_null = wrong_null = different = 0
    worst = 0.0
    example = None
    for key in set(floor) & set(other):
        want, got = floor[key], other[key]
        if want is None and got is None:
            continue
        if want is None:
            zero_for_null += got == 0.0
            different += got != 0.0
            example = example or (key, want, got)
            continue
        if got is None:
            wrong_null += 1
            example = example or (key, want, got)
            continue
        error = abs(got - want) / max(abs(want), 1e-300) if want else abs(got)
        if error > tolerance:
            different += 1
            worst = max(worst, error)
            example = example or (key, want, got)
    parts = []
    if missing:
        parts.append(f"{len(missing)} of {len(floor)} values missing")
    if extra:
        parts.append(f"{len(extra)} values the floor does not have")
    if zero_for_null:
        parts.append(f"0.0 for {zero_for_null} undefined values")
    if wrong_null:
        parts.append(f"null for {wrong_null} defined values")
    if different:
        parts.append(f"{different} values differ (worst relative error {worst:.1e})")
    if not parts:
        return None
    if example:
        (kpi, week, channel), want, got = example
        parts.append(f"e.g. {kpi} {channel} week of {week}: {got} vs floor {want}")
    return "; ".join(parts)


# -- running ----------------------------------------------------------------------------------
def run_once(setup: Setup, scratch: Path) -> tuple[float, int, str, float]:
    """(wall seconds of the whole process, its peak RSS in bytes, its stdout, its CPU seconds:
    user + system, of all its threads)."""
    env = {**os.environ, **(setup.env or {})}
    # fresh files per process: a grandchild that outlives its parent (a library's background
    # helper) may still hold and write the previous process's files
    handle, name = tempfile.mkstemp(dir=scratch, suffix=".out")
    os.close(handle)
    out_file, err_file = Path(name), Path(name).with_suffix(".err")
    with open(out_file, "w") as out, open(err_file, "w") as err:
        started = time.perf_counter()
        child = subprocess.Popen(setup.command, cwd=setup.cwd, env=env, stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL)
        # wait4 gives this child's own peak RSS (RUSAGE_CHILDREN would be the max over all)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    text = out_file.read_text()
    if child.returncode != 0:
        message = (err_file.read_text() or text).strip()
        raise RuntimeError(f"exit {child.returncode}: {message[-1500:]}")
    return elapsed, usage.ru_maxrss * 1024, text, usage.ru_utime + usage.ru_stime


def kpiforge_env(scratch: Path) -> dict[str, str]:
    """kpiforge's caches in this run's scratch folder: filled by the warm-up, never by an
    earlier run (nor the user's own ~/.cache); any switch of the user's turning it off goes."""
    return {"KPIFORGE_CACHE_DIR": str(scratch / "kpiforge-cache"), "KPIFORGE_NO_CACHE": ""}


def prepare(name: str, path: Path, args: argparse.Namespace, pythons: dict[str, Path],
            scratch: Path) -> Setup:
    """The command for one contender on one data file (writing its project files)."""
    first, last = FIRST_DAY.isoformat(), last_day().isoformat()
    if name in ("floor", "floor-by-day"):
        code = script(FLOOR_SCRIPT, SQL=FLOOR_SQL if name == "floor" else FLOOR_BY_DAY_SQL, KPIS=KPIS)
        return Setup([str(pythons["kpiforge"]), "-c", code, str(path), first, last], parse_rows)
    if name == "kpiforge-cli":
        project = kpiforge_project(path)
        kpiforge = pythons["kpiforge"].parent / "kpiforge"
        command = [str(kpiforge), "run", "--project", str(project), "--grain", "week",
                   "--from", first, "--to", last, "--by", "channel", "--format", "json",
                   "--no-alerts", *[f"--kpi={k}" for k in KPIS]]
        return Setup(command, parse_kpiforge_json, env=kpiforge_env(scratch))
    if name == "kpiforge-api":
        project = kpiforge_project(path)
        code = script(KPIFORGE_API_SCRIPT, KPIS=KPIS)
        return Setup([str(pythons["kpiforge"]), "-c", code, str(project), first, last], parse_rows,
                     env=kpiforge_env(scratch))
    if name in ("metricflow", "metricflow-api"):
        root = metricflow_project(path)
        bin_dir = pythons["metricflow"].parent
        env = {"DBT_PROFILES_DIR": str(root), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        # once per data file, untimed: dbt builds the view and the semantic manifest mf reads
        stamp = root / ".built"
        if not stamp.exists() or stamp.read_text() != MF_SEMANTIC + str(path):
            for step in (["dbt", "run", "--quiet"], ["dbt", "parse", "--quiet"]):
                done = subprocess.run([str(bin_dir / step[0]), *step[1:]], cwd=root, capture_output=True,
                                      text=True, env={**os.environ, **env})
                if done.returncode != 0:
                    raise RuntimeError(f"{' '.join(step)} failed: {(done.stdout + done.stderr)[-1500:]}")
            stamp.write_text(MF_SEMANTIC + str(path))
        if name == "metricflow-api":
            code = script(METRICFLOW_API_SCRIPT, KPIS=KPIS)
            return Setup([str(pythons["metricflow"]), "-c", code, str(root), first, last], parse_rows,
                         env=env)
        command = [str(bin_dir / "mf"), "query", "--metrics", ",".join(KPIS),
                   "--group-by", "metric_time__week,ad_row__channel", "--start-time", first,
                   "--end-time", last, "--csv", "mf_out.csv", "--quiet"]
        return Setup(command, parse_metricflow_csv, cwd=root, env=env)
    if name == "kpi-engine":
        code = script(KPI_ENGINE_SCRIPT, KPIS=KPIS)
        return Setup([str(pythons["kpi-engine"]), "-c", code, str(path), first, last], parse_rows)
    raise ValueError(name)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=lambda s: [int(float(x)) for x in s.split(",")],
                        default=SIZES, help="ad rows, comma-separated (1e4,1e6 works)")
    parser.add_argument("--quick", action="store_true", help="only 1e4 rows")
    # 5: the 1.3x target sits within the run-to-run noise of a shared machine (+-0.05x with 3)
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs per contender and size (0: only check the answers)")
    parser.add_argument("--only", type=lambda s: s.split(","), default=CONTENDERS,
                        help=f"contenders, comma-separated, from {','.join(CONTENDERS)} "
                             "('kpiforge' is both kpiforge contenders)")
    parser.add_argument("--no-install", action="store_true",
                        help="never create a peer's venv: a peer whose venv is not cached is "
                             "reported as not run")
    parser.add_argument("--venvs", type=Path, default=DATA / "venvs",
                        help="where the peers' virtual environments are cached")
    parser.add_argument("--data", type=Path, default=DATA, help="where the data files are cached")
    parser.add_argument("--kpiforge-venv", action="store_true",
                        help="run kpiforge from a venv with a non-editable install of the checkout")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [10_000]
    args.only = list(dict.fromkeys(
        n for name in args.only for n in (KPIFORGE_CONTENDERS if name == "kpiforge" else [name])))
    unknown = [name for name in args.only if name not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender {', '.join(unknown)}; choose from {', '.join(CONTENDERS)}")
    if "floor" not in args.only:
        args.only = ["floor", *args.only]  # the ratios and the checks need it
    return args


def interpreters(names: list[str], args: argparse.Namespace) -> tuple[dict[str, Path], dict[str, str]]:
    """(venv interpreter per environment name, why a contender cannot run)."""
    pythons: dict[str, Path] = {}
    problems: dict[str, str] = {}
    try:
        pythons["kpiforge"], how = kpiforge_python(args.venvs, args.kpiforge_venv)
        print(f"kpiforge: {how}")
        if pythons["kpiforge"] == Path(sys.executable) and sys.flags.dont_write_bytecode:
            compile_checkout()
    except (VenvError, OSError) as error:
        for name in ("floor", "floor-by-day", "kpiforge-cli", "kpiforge-api"):
            problems[name] = f"kpiforge could not be installed: {error}"
    users = {"metricflow": ("metricflow", "metricflow-api"), "kpi-engine": ("kpi-engine",)}
    for name, requirements in PEER_REQUIREMENTS.items():
        if not set(users[name]) & set(names):
            continue
        try:
            pythons[name] = ensure_venv(args.venvs / name, requirements,
                                        create=not args.no_install)
        except (VenvError, OSError) as error:
            for user in users[name]:
                problems[user] = f"could not install {' '.join(requirements)}: {error}"
    return pythons, problems


def run_size(rows: int, args: argparse.Namespace, pythons: dict[str, Path],
             problems: dict[str, str]) -> dict[str, Outcome]:
    path = data_path(rows, args.data)
    started = time.perf_counter()
    if not path.exists():
        # in a child, so that this driver stays small
        subprocess.run([str(pythons.get("kpiforge", sys.executable)), __file__, "--generate-only",
                        "--sizes", str(rows), "--data", str(args.data)], check=True)
    print(f"\ndata: {path} ({rows:,} ad rows, {path.stat().st_size / 1e6:.1f} MB; "
          f"ready in {time.perf_counter() - started:.1f} s)", flush=True)
    # the children's output goes to files of this run's own (two runs may share --data)
    (args.data / "scratch").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=args.data / "scratch"))
    outcomes = {name: Outcome(name, problem=problems.get(name)) for name in args.only}
    setups: dict[str, Setup] = {}
    tables: dict[str, Table] = {}
    for name, outcome in outcomes.items():
        if outcome.problem:
            continue
        try:
            setups[name] = prepare(name, path, args, pythons, scratch)
            if setups[name].cwd:  # no answer left from an earlier run
                (setups[name].cwd / "mf_out.csv").unlink(missing_ok=True)
            _, _, out, _ = run_once(setups[name], scratch)  # warm-up: the file in the page cache
            try:
                tables[name] = setups[name].parse(out, setups[name].cwd)
                if setups[name].parse is parse_rows:
                    outcome.stray = stray_output(out)
            except ValueError as error:
                raise ValueError(f"{error}; its output began {out[:200]!r}, ended {out[-200:]!r}") from None
        except Exception as error:  # noqa: BLE001 - a peer that fails is reported, not fatal
            outcome.problem = f"{type(error).__name__}: {error}"
            setups.pop(name, None)
    floor = tables.get("floor")
    for name, table in tables.items():
        if name != "floor" and floor is not None:
            outcomes[name].finding = compare(floor, table)
    if floor is not None:
        nulls = sum(v is None for v in floor.values())
        print(f"the floor's answer: {len(floor)} values, {nulls} of them undefined (null)")
    for _ in range(args.repeats):  # round robin: a change of machine load hits all alike
        for name, setup in list(setups.items()):
            try:
                seconds, peak, _, cpu = run_once(setup, scratch)
            except Exception as error:  # noqa: BLE001
                outcomes[name].problem = f"{type(error).__name__}: {error}"
                setups.pop(name)
                continue
            outcomes[name].times.append(seconds)
            outcomes[name].cpu.append(cpu)
            outcomes[name].peak = max(outcomes[name].peak, peak)
    shutil.rmtree(scratch, ignore_errors=True)
    # as it goes, so that a long run that is stopped still leaves its figures
    print(f"{size(rows)} measured: " + ", ".join(
        f"{name} {statistics.median(o.times):.3f} s" if o.times else f"{name} n/a"
        for name, o in outcomes.items()), flush=True)
    return outcomes


def size(rows: int) -> str:
    """1e4, 1e6, 2.5e7."""
    mantissa, exponent = f"{rows:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def median(outcome: Outcome | None, what: str = "times") -> float | None:
    """The median wall time (``what="cpu"``: process time) of ``outcome``'s runs."""
    if outcome is None or outcome.problem or not outcome.times:
        return None
    return statistics.median(getattr(outcome, what))


def report(results: dict[int, dict[str, Outcome]], names: list[str]) -> list[tuple[str, float | None, bool | None]]:
    """Print the table and the findings; return the targets as (label, ratio, met)."""
    width = max(14, *(len(n) + 2 for n in names))
    for what, title in (("times", "seconds per whole process (wall)"),
                        ("cpu", "process time per whole process (user + system CPU seconds)")):
        print(f"\n{title}, median of the runs (x = ratio to the floor in the same run)")
        print(f"{'ad rows':>10}" + "".join(f"{n:>{width + 8}}" for n in names))
        for rows, outcomes in results.items():
            floor = median(outcomes.get("floor"), what)
            cells = []
            for name in names:
                seconds = median(outcomes.get(name), what)
                if seconds is None:
                    cells.append(f"{'n/a':>{width + 8}}")
                    continue
                ratio = f"{seconds / floor:.2f}x" if floor else "?"
                mark = " !" if outcomes[name].finding else ""
                cells.append(f"{f'{seconds:.3f} s {ratio:>6}{mark}':>{width + 8}}")
            print(f"{size(rows):>10}" + "".join(cells))
    print("(! = numbers differ from the floor's, see below)")
    print("\nresults against the floor (relative tolerance 1e-9, undefined = null):")
    for rows, outcomes in results.items():
        for name in names:
            outcome = outcomes.get(name)
            if outcome is None or name == "floor" and not outcome.problem:
                continue
            if outcome.problem:
                verdict = f"did not run: {outcome.problem}"
            else:
                verdict = f"DIFFERENT: {outcome.finding}" if outcome.finding else "same numbers"
            peak = f" (peak {outcome.peak / 2**20:.0f} MB)" if outcome.peak else ""
            print(f"  {size(rows)} {name}: {verdict}{peak if not outcome.problem else ''}")
            if outcome.stray:
                lines = outcome.stray.splitlines()
                print(f"    and it printed {len(lines)} other lines on stdout before its answer, "
                      f"e.g. {lines[0].strip()[:90]!r}")
    targets: list[tuple[str, float | None, bool | None]] = []
    big = max(results)
    # the 1.3x is in process time (CPU), which other work on a shared machine
    # disturbs far less than wall time; the wall ratio is in the label
    infos: list[tuple[str, float | None]] = []
    for name in ("kpiforge-cli", "kpiforge-api"):
        k, f = median(results[big].get(name), "cpu"), median(results[big].get("floor"), "cpu")
        ratio = k / f if k and f else None
        wall_k, wall_f = median(results[big].get(name)), median(results[big].get("floor"))
        wall = f", wall {wall_k / wall_f:.2f}x" if wall_k and wall_f else ""
        if name == "kpiforge-cli":  # the job: the command line, as a whole process
            targets.append((f"{name} / floor at {size(big)} rows, process time{wall} <= 1.30",
                            ratio, None if ratio is None else ratio <= 1.3))
        else:
            # a script's numpy starts OpenBLAS with a thread per core, spinning ~0.1 s of CPU
            # each; the library leaves its host's threads alone (the CLI sets one)
            infos.append((f"{name} / floor at {size(big)} rows, process time{wall} (OpenBLAS "
                          "as the host sets it)", ratio))
    by_day = median(results[big].get("floor-by-day"), "cpu")
    k = median(results[big].get("kpiforge-cli"), "cpu")
    infos.append((f"kpiforge-cli / floor-by-day at {size(big)} rows, process time",
                  k / by_day if k and by_day else None))
    # MetricFlow as a whole process: the faster of its CLI and its Python API, the best a
    # MetricFlow user would get
    for rows, outcomes in results.items():
        k = median(outcomes.get("kpiforge-cli"))
        peers = {n: median(outcomes.get(n)) for n in ("metricflow", "metricflow-api")}
        peers = {n: t for n, t in peers.items() if t}
        best = min(peers, key=lambda n: peers[n]) if peers else "metricflow"
        ratio = k / peers[best] if k and peers else None
        targets.append((f"kpiforge-cli / {best} at {size(rows)} rows < 1.00", ratio,
                        None if ratio is None else ratio < 1.0))
    print()
    for label, ratio, met in targets:
        shown = "not measured" if ratio is None else f"{ratio:.2f}x"
        verdict = "not measured" if met is None else ("met" if met else "missed")
        print(f"target {label:<62}: measured {shown} -> {verdict}")
    for label, ratio in infos:
        shown = "not measured" if ratio is None else f"{ratio:.2f}x"
        print(f"info {label:<64}: measured {shown}")
    if big < 10_000_000:
        print(f"(the issue's 1.3x target is at 1e7 rows; this run's largest size is {size(big)})")
    return targets


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.generate_only:
        for rows in args.sizes:
            generate(rows, args.data)
        return 0
    print(f"bench_peers: {', '.join(args.only)} at {', '.join(size(r) for r in args.sizes)} ad rows, "
          f"{args.repeats} timed runs each; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    pythons, problems = interpreters(args.only, args)
    for name, problem in problems.items():
        if name in args.only:
            print(f"{name}: cannot run here: {problem}")
    results = {rows: run_size(rows, args, pythons, problems) for rows in args.sizes}
    report(results, args.only)
    print(f"\nload average after the runs: {os.getloadavg()[0]:.2f}"
          f"{' (busy machine: expect noisy times)' if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1) else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
