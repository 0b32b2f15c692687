"""examples/sample_inputs.yaml is the guide's worked examples: each figure is the guide's, and
figures about the same customers agree with each other (10 % churn with 90 % retention)."""

from pathlib import Path

import pytest
import yaml

from kpiforge import Engine

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample_inputs.yaml"


@pytest.fixture(scope="module")
def results():
    inputs = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    return Engine.load().evaluate(inputs)


@pytest.mark.parametrize("kpi, value", [
    ("churn_rate", 10.0),           # LTV's example churn
    ("retention_rate", 90.0),       # the customers who were not lost
    ("ltv", 500.0),
    ("positive_mention_share", 75.0),
    ("neutral_mention_share", 15.0),
    ("negative_mention_share", 10.0),
    ("net_sentiment_score", 65.0),
    ("revenue_per_customer", 100.0),
    ("organic_traffic_share", 53.0),
])
def test_guide_figure(results, kpi, value):
    assert results[kpi].value == pytest.approx(value)


def test_churn_and_retention_describe_the_same_customers(results):
    # no customer is both kept and lost: the two rates of one period add up to 100
    assert results["churn_rate"].value + results["retention_rate"].value == pytest.approx(100.0)


def test_sentiment_shares_cover_every_mention(results):
    shares = ("positive_mention_share", "neutral_mention_share", "negative_mention_share")
    assert sum(results[k].value for k in shares) == pytest.approx(100.0)
