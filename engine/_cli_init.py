"""``kpiforge init DIR``: a project that validates, tests and runs as soon as it is written.

It writes a ``kpiforge.yaml`` (with its ``$schema`` line, for editors), a team KPI folder with
one example KPI and its test, and a small CSV of sample data the project reads, so that
``kpiforge validate --project``, ``kpiforge test --project`` and ``kpiforge run --project``
work at once and each file shows what to change. Existing files are never overwritten.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import click

from ._cli_common import fail
from ._terminal import echo

__all__ = ["init_command"]

SCHEMAS = "https://kpiforge.dev/schemas/v1"
_TEAM = re.compile(r"^[a-z][a-z0-9_-]*\Z")


def _project(team: str) -> str:
    return f"""\
# yaml-language-server: $schema={SCHEMAS}/project.schema.json
# The kpiforge project: which KPIs, and where their inputs come from.
#   kpiforge validate --project kpiforge.yaml
#   kpiforge test --project kpiforge.yaml
#   kpiforge run --project kpiforge.yaml --grain month --by channel
definitions: [kpiforge:standard, {team}-kpis/]
currency: EUR
timezone: UTC

sources:
  # data/sample.csv is invented sample data: point this at your own files (a glob such as
  # data/ads_*.csv works), or use type: parquet, duckdb, sqlite or sql.
  ads:
    type: csv
    path: data/sample.csv
    time: date
    dimensions: [channel]
    inputs:
      impressions: {{agg: sum}}
      clicks: {{agg: sum}}
      cost: {{column: spend, agg: sum}}
      signups: {{agg: sum}}

# Alerts: uncomment to print the KPIs that turn warning or critical on each run.
# state: .kpiforge/state.db
# alerting: {{drafts: true}}   # draft KPIs (like the example's) alert only with this
# sinks:
#   terminal: {{type: console}}
# routes:
#   - match: {{category: acquisition}}
#     sinks: [terminal]
"""


def _kpi(team: str) -> str:
    return f"""\
# yaml-language-server: $schema={SCHEMAS}/kpi.schema.json
# An example team KPI: copy this file for each KPI of your own (one KPI per file).
id: cost_per_signup
name: Cost per signup
labels: {{en: Cost per signup, fr: Coût par inscription}}
description: Ad spend divided by the signups it brought.
category: acquisition
owner: {team}
status: draft
version: 1
formula: cost / signups
inputs:
  cost: {{description: Ad spend, unit: currency}}
  signups: {{description: Accounts created after an ad click, unit: count}}
unit: currency
direction: lower_is_better
thresholds: {{good: 20, warning: 35, critical: 50}}
"""


_TEST = f"""\
# yaml-language-server: $schema={SCHEMAS}/test.schema.json
# What cost_per_signup must give: kpiforge test runs these cases.
tests:
  - name: 300 EUR for 20 signups is 15 EUR a signup, good
    inputs: {{cost: 300, signups: 20}}
    expect:
      cost_per_signup: {{value: 15.0, status: good}}
  - name: no signup gives no cost per signup, not 0
    inputs: {{cost: 300, signups: 0}}
    expect:
      cost_per_signup: {{value: null, status: unknown, reason: division by zero}}
"""


def _sample_csv(today: date) -> str:
    """Two months of daily rows for two channels, ending yesterday; deterministic figures."""
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    rows = ["date,channel,impressions,clicks,spend,signups"]
    day = first
    while day < today:
        n = (day - first).days
        for channel, base in (("search", 1000), ("social", 1600)):
            impressions = base + 37 * (n % 7)
            clicks = impressions * (4 if channel == "search" else 1) // 100
            spend = round(clicks * (0.8 if channel == "search" else 1.4), 2)
            signups = max(1, clicks // (12 if channel == "search" else 30))
            rows.append(f"{day.isoformat()},{channel},{impressions},{clicks},{spend},{signups}")
        day += timedelta(days=1)
    return "\n".join(rows) + "\n"


@click.command(name="init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--team", default="team", show_default=True,
              help="Name of the team: its KPIs go to TEAM-kpis/.")
def init_command(directory: str, team: str) -> None:
    """Create a project in DIRECTORY (default: here): kpiforge.yaml, a team KPI folder with an
    example KPI and its test, and sample data, ready for validate, test and run."""
    if not _TEAM.match(team):
        raise click.BadParameter("lower-case letters, digits, '-' and '_', starting with a letter",
                                 param_hint="--team")
    root = Path(directory)
    files = {
        root / "kpiforge.yaml": _project(team),
        root / f"{team}-kpis" / "cost_per_signup.yaml": _kpi(team),
        root / f"{team}-kpis" / "cost_per_signup.test.yaml": _TEST,
        root / "data" / "sample.csv": _sample_csv(date.today()),
    }
    existing = [str(p) for p in files if p.exists()]
    if existing:
        fail(f"not overwriting {', '.join(existing)}; choose an empty directory", 1)
    try:
        for path, content in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8", newline="\n") as handle:
                handle.write(content)
    except OSError as exc:
        fail(f"cannot write {exc.filename}: {exc.strerror or exc}")
    for path in files:
        echo(f"created {path}")
    project = root / "kpiforge.yaml"
    echo(f"\nnext: kpiforge validate --project {project}\n"
         f"      kpiforge test --project {project}\n"
         f"      kpiforge run --project {project} --by channel")
