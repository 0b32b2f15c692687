"""A small project for the report tests: two years of monthly ads by channel, four KPIs (one
of them not computable in October 2026: no conversions, division by zero), an objective with
a target, and a file sink so that the period's alerts are real ones (found by a dry run)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from click.testing import CliRunner

from kpiforge._plugins import load_plugins
from kpiforge.cli import build_cli

PLUGINS = load_plugins()
DEFINITIONS = """\
kpis:
  - {id: ctr, name: CTR, labels: {en: Click-through rate, fr: Taux de clic}, formula: clicks / impressions * 100,
     unit: percent, status: certified, direction: higher_is_better, objectives: [reach_more],
     inputs: {clicks: {unit: count}, impressions: {unit: count}}, thresholds: {good: 3, warning: 2, critical: 1}}
  - {id: cpc, name: CPC, labels: {en: Cost per click, fr: Coût par clic}, formula: cost / clicks, unit: currency,
     status: certified, direction: lower_is_better, objectives: [reach_more], thresholds: {good: 0.5, warning: 1, critical: 2},
     inputs: {cost: {unit: currency}, clicks: {unit: count}}}
  - {id: clicks, name: Clicks, labels: {en: Clicks, fr: Clics}, formula: clicks, unit: count,
     status: certified, direction: higher_is_better, inputs: {clicks: {unit: count}}}
  - {id: cost_per_conversion, name: Cost per conversion, labels: {en: Cost per conversion, fr: Coût par conversion},
     formula: cost / conversions, unit: currency, status: certified, direction: lower_is_better,
     inputs: {cost: {unit: currency}, conversions: {unit: count}}}
"""
OBJECTIVES = """\
objectives:
  - id: reach_more
    labels: {en: Reach more people, fr: Toucher plus de monde}
    kpis: [ctr, cpc]
    owner: Acquisition
    target: {kpi: ctr, value: 3, baseline: 1, start: 2026-01-01, deadline: 2026-12-31}
"""


def write_report_project(root: Path) -> Path:
    """``root/kpiforge.yaml``; CTR falls in October 2026 for display (critical there)."""
    rows = ["date,channel,impressions,clicks,spend,conversions"]
    for year in (2025, 2026):
        for month in range(1, 13):
            if (year, month) > (2026, 10):
                break
            for channel, clicks in (("search", 40), ("display", 12)):
                if (year, month, channel) == (2026, 10, "display"):
                    clicks = 4
                conversions = 0 if (year, month) == (2026, 10) else 3
                rows.append(f"{year}-{month:02d}-10,{channel},1000,{clicks + month % 3},"
                            f"{30 + month},{conversions}")
    (root / "defs").mkdir()
    (root / "defs" / "kpis.yaml").write_text(DEFINITIONS)
    (root / "defs" / "objectives.yaml").write_text(OBJECTIVES)
    (root / "ads.csv").write_text("\n".join(rows) + "\n")
    (root / "kpiforge.yaml").write_text(textwrap.dedent("""
        definitions: [defs/]
        currency: EUR
        state: state/alerts.db
        sources:
          ads:
            type: csv
            path: ads.csv
            time: date
            dimensions: [channel]
            inputs:
              impressions: {agg: sum}
              clicks: {agg: sum}
              cost: {column: spend, agg: sum}
              conversions: {agg: sum}
        sinks:
          log: {type: file, path: alerts.jsonl}
    """))
    return root / "kpiforge.yaml"


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_cli(PLUGINS), list(args), obj=PLUGINS)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def report_json(project: Path, *args: str) -> dict:
    code, out, err = cli("report", "--project", str(project), "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)


def write_report(project: Path, out: Path, *args: str) -> Path:
    code, _, err = cli("report", "--project", str(project), "-o", str(out), *args)
    assert code == 0, err
    return Path(err.strip().rsplit(" ", 1)[-1])
