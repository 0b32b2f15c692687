"""The bundled catalog keeps the contract other systems rely on: ids, categories, formulas, units."""

import json
import subprocess
import sys

import pytest

from kpiforge import Engine

H, L = "higher_is_better", "lower_is_better"
CONTRACT = [
    ("awareness", "reach", "reach", "count", H),
    ("awareness", "impressions", "impressions", "count", H),
    ("awareness", "frequency", "impressions / reach", "ratio", "target"),
    ("awareness", "unique_visitors", "unique_visitors", "count", H),
    ("awareness", "sessions", "sessions", "count", H),
    ("awareness", "pageviews", "pageviews", "count", H),
    ("awareness", "avg_session_duration", "total_session_duration / sessions", "seconds", H),
    ("awareness", "organic_traffic_share", "organic_sessions / sessions * 100", "percent", H),
    ("awareness", "traffic_source_share", "sessions / total(sessions) * 100", "percent", H),
    ("awareness", "brand_mentions", "mentions", "count", H),
    ("awareness", "positive_mention_share", "positive_mentions / mentions * 100", "percent", H),
    ("awareness", "negative_mention_share", "negative_mentions / mentions * 100", "percent", L),
    ("awareness", "neutral_mention_share", "neutral_mentions / mentions * 100", "percent", H),
    ("awareness", "net_sentiment_score", "(positive_mentions - negative_mentions) / mentions * 100", "score", H),
    ("awareness", "social_followers", "followers", "count", H),
    ("awareness", "post_likes", "likes", "count", H),
    ("acquisition", "ctr", "clicks / impressions * 100", "percent", H),
    ("acquisition", "cpc", "cost / clicks", "currency", L),
    ("acquisition", "lead_conversion_rate", "leads / landing_page_visitors * 100", "percent", H),
    ("acquisition", "cpl", "cost / leads", "currency", L),
    ("conversion", "conversion_rate", "conversions / site_visitors * 100", "percent", H),
    ("conversion", "cpa", "sales_marketing_cost / new_customers", "currency", L),
    ("conversion", "marketing_originated_revenue_share", "marketing_revenue / revenue * 100", "percent", H),
    ("conversion", "aov", "revenue / orders", "currency", H),
    ("conversion", "revenue_per_customer", "revenue / customers", "currency", H),
    ("conversion", "lead_to_customer_rate", "new_customers / leads * 100", "percent", H),
    ("retention", "churn_rate", "customers_lost / customers_start * 100", "percent", L),
    ("retention", "retention_rate", "(customers_end - new_customers) / customers_start * 100", "percent", H),
    ("retention", "ltv", "revenue_per_customer * gross_margin / (churn_rate / 100)", "currency", H),
    ("retention", "ltv_cac_ratio", "ltv / cpa", "ratio", H),
    ("retention", "csat", "satisfied_responses / csat_responses * 100", "percent", H),
    ("retention", "nps", "(promoters - detractors) / nps_responses * 100", "score", H),
    ("seo", "organic_traffic", "organic_sessions", "count", H),
    ("seo", "avg_keyword_position", "keyword_position_sum / tracked_keywords", "ratio", L),
    ("seo", "pages_per_session", "pageviews / sessions", "ratio", H),
    ("seo", "bounce_rate", "bounced_sessions / sessions * 100", "percent", L),
    ("seo", "content_conversion_rate", "content_conversions / content_views * 100", "percent", H),
]


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


def test_the_catalog_is_exactly_the_contract(engine):
    assert sorted(engine.definitions) == sorted(row[1] for row in CONTRACT)


@pytest.mark.parametrize("category, kpi, formula, unit, direction", CONTRACT, ids=[r[1] for r in CONTRACT])
def test_contract_row(engine, category, kpi, formula, unit, direction):
    d = engine[kpi]
    assert (d.category, d.formula, d.unit.value, d.direction.value) == (category, formula, unit, direction)
    assert d.owner == "marketing" and d.status == "certified"
    assert d.labels["en"] and d.labels["fr"] and d.descriptions["fr"] and d.description
    assert d.vanity is (kpi in {"social_followers", "post_likes"})
    if d.unit.value == "currency":
        assert d.currency == "EUR"


@pytest.mark.parametrize("inputs, kpi, value", [
    ({"reach": 1.5e6, "impressions": 4.5e6}, "frequency", 3.0),
    ({"cost": 500, "clicks": 200}, "cpc", 2.5),
    ({"leads": 50, "landing_page_visitors": 1000}, "lead_conversion_rate", 5.0),
    ({"cost": 1000, "leads": 100}, "cpl", 10.0),
    ({"sales_marketing_cost": 10000, "new_customers": 100}, "cpa", 100.0),
    ({"revenue": 10000, "orders": 200}, "aov", 50.0),
    ({"customers_lost": 50, "customers_start": 1000}, "churn_rate", 5.0),
    ({"revenue_per_customer": 100, "gross_margin": 0.5, "customers_lost": 10, "customers_start": 100}, "ltv", 500.0),
    ({"content_conversions": 100, "content_views": 1000}, "content_conversion_rate", 10.0),
    ({"total_session_duration": 210 * 40, "sessions": 40}, "avg_session_duration", 210.0),
    # the guide's sentiment profile: 75 % positive, 15 % neutral, 10 % negative
    ({"neutral_mentions": 150, "mentions": 1000}, "neutral_mention_share", 15.0),
    ({"positive_mentions": 750, "negative_mentions": 100, "mentions": 1000}, "net_sentiment_score", 65.0),
    ({"revenue": 100_000, "customers": 1000}, "revenue_per_customer", 100.0),
])
def test_guide_worked_examples(engine, inputs, kpi, value):
    assert engine.evaluate(inputs, kpis=[kpi])[kpi].value == pytest.approx(value)


def test_ltv_is_at_least_three_times_cac_in_the_guide_example(engine):
    inputs = {"revenue_per_customer": 100, "gross_margin": 0.5, "customers_lost": 10,
              "customers_start": 100, "sales_marketing_cost": 10000, "new_customers": 100}
    result = engine.evaluate(inputs, kpis=["ltv_cac_ratio"])["ltv_cac_ratio"]
    assert result.value == pytest.approx(5.0) and result.status == "good"


def test_cli_acceptance_ctr():
    proc = subprocess.run([sys.executable, "-m", "kpiforge", "eval", "--set", "clicks=120", "--set",
                           "impressions=4000", "--kpi", "ctr", "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert json.loads(proc.stdout)["results"] == [
        {"kpi": "ctr", "value": 3.0, "unit": "percent", "status": "good", "reason": None,
         "reason_code": None}]


def test_catalog_money_follows_the_project_currency():
    assert Engine.load()["aov"].currency == "EUR"  # the default
    assert Engine.load(currency="USD")["aov"].currency == "USD"
