"""Additivity declarations: the catalog's distinct counts and snapshots, and a source's native
grain and row keys (read from the project, not yet enforced by the run plan)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpiforge import Engine
from kpiforge._project import load_project

ROOT = Path(__file__).resolve().parents[1]

CATALOG = [
    # (kpi, input, additivity, time_agg)
    ("reach", "reach", "non_additive", None),
    ("frequency", "reach", "non_additive", None),
    ("frequency", "impressions", "additive", None),
    ("unique_visitors", "unique_visitors", "non_additive", None),
    ("social_followers", "followers", "semi_additive", "last"),
    ("churn_rate", "customers_start", "semi_additive", "first"),
    ("churn_rate", "customers_lost", "additive", None),
    ("retention_rate", "customers_start", "semi_additive", "first"),
    ("retention_rate", "customers_end", "semi_additive", "last"),
]


@pytest.fixture(scope="module")
def catalog():
    return Engine.load()


@pytest.mark.parametrize(("kpi", "name", "additivity", "time_agg"), CATALOG)
def test_catalog_declares_additivity(catalog, kpi: str, name: str, additivity: str,
                                     time_agg: str | None) -> None:
    spec = catalog[kpi].inputs[name]
    assert spec.additivity == additivity
    assert spec.time_agg == time_agg


def test_demo_ad_reach_declares_grain_and_keys() -> None:
    project = load_project(ROOT / "examples" / "demo" / "kpiforge.yaml")
    ad_reach = project.sources["ad_reach"]
    assert ad_reach.grain == "month"
    assert ad_reach.keys == ("channel",)
    # a source without the keys declares neither
    web = project.sources["web"]
    assert web.grain is None
    assert web.keys == ()
