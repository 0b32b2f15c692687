"""kpiforge ab: every figure against scipy / statsmodels on generated data, the SRM warning, Holm."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kpiforge import KpiforgeError
from kpiforge._ab import ab
from kpiforge._ab_stats import chi2_sf, holm, student_t_sf
from kpiforge._project import load_project

scipy_stats = pytest.importorskip("scipy.stats")
multitest = pytest.importorskip("statsmodels.stats.multitest")
proportion = pytest.importorskip("statsmodels.stats.proportion")

ALPHA = 0.05


def _write(tmp_path: Path, sizes: dict[str, int], seed: int = 1,
           fmt: str = "csv") -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    groups, lines = {}, ["day,variant,converted,revenue,orders"]
    for i, (name, n) in enumerate(sizes.items()):
        converted = (rng.random(n) < 0.10 + 0.02 * i).astype(int)
        orders = rng.poisson(0.5 + 0.1 * i, n)
        revenue = np.round(orders * rng.gamma(2.0, 20.0 + 3 * i, n), 2)
        groups[name] = {"converted": converted, "revenue": revenue, "orders": orders}
        lines += [f"2026-10-{1 + k % 28:02d},{name},{c},{r},{o}"
                  for k, (c, r, o) in enumerate(zip(converted, revenue, orders))]
    (tmp_path / "visits.csv").write_text("\n".join(lines) + "\n")
    if fmt == "parquet":
        pd = pytest.importorskip("pandas")
        pd.read_csv(tmp_path / "visits.csv", dtype={"day": str}).to_parquet(tmp_path / "visits.parquet")
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""
        sources:
          web:
            type: FMT
            path: visits.FMT
            time: day
            dimensions: [variant]
            inputs:
              conversions: {column: converted, agg: sum}
              site_visitors: {column: "*", agg: count}
              customers: {column: "*", agg: count}
              revenue: {agg: sum}
              orders: {agg: sum}
    """).replace("FMT", fmt))
    return groups


def _expected(test: str, g: dict[str, np.ndarray], c: dict[str, np.ndarray]) -> dict[str, float]:
    z = scipy_stats.norm.ppf(1 - ALPHA / 2)
    if test == "conversion_rate":
        x1, n1, x0, n0 = g["converted"].sum(), len(g["converted"]), c["converted"].sum(), len(c["converted"])
        _, p = proportion.proportions_ztest([x1, x0], [n1, n0])  # pooled variance
        lo, hi = proportion.confint_proportions_2indep(x1, n1, x0, n0, method="wald", alpha=ALPHA)
        return {"value": 100 * x1 / n1, "control_value": 100 * x0 / n0, "p_value": p,
                "ci_low": 100 * lo, "ci_high": 100 * hi}
    if test == "revenue_per_customer":
        a, b = g["revenue"], c["revenue"]
        res = scipy_stats.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(1 - ALPHA)
        return {"value": a.mean(), "control_value": b.mean(), "p_value": res.pvalue,
                "ci_low": ci.low, "ci_high": ci.high}
    # aov: delta method, written out from per-unit data (numpy's covariances, not the sums)
    out = {}
    for key, d in (("t", g), ("c", c)):
        y, x = d["revenue"], d["orders"]
        r = y.sum() / x.sum()
        cov = np.cov(y, x, ddof=1)
        out[key] = (r, (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (len(y) * x.mean() ** 2))
    diff, se = out["t"][0] - out["c"][0], math.sqrt(out["t"][1] + out["c"][1])
    return {"value": out["t"][0], "control_value": out["c"][0],
            "p_value": 2 * scipy_stats.norm.sf(abs(diff / se)), "ci_low": diff - z * se,
            "ci_high": diff + z * se}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(("kpi", "test"), [
    ("conversion_rate", "two-proportion z-test"),
    ("revenue_per_customer", "Welch t-test"),
    ("aov", "delta method z-test"),
])
def test_figures_match_scipy(tmp_path, kpi, test, fmt) -> None:
    groups = _write(tmp_path, {"A": 800, "B": 820}, fmt=fmt)
    result = ab(load_project(tmp_path / "kpiforge.yaml"), kpi, variant="variant", control="A",
                period="2026-10")
    (row,) = result.results
    want = _expected(kpi, groups["B"], groups["A"])
    assert row.test == test
    assert (row.variant, row.control) == ("B", "A")
    for key, value in want.items():
        assert getattr(row, key) == pytest.approx(value, rel=1e-7, abs=1e-9), key
    assert row.diff == pytest.approx(want["value"] - want["control_value"], rel=1e-9)
    assert row.lift == pytest.approx(want["value"] / want["control_value"] - 1, rel=1e-9)
    assert row.significant == (want["p_value"] < ALPHA)
    assert not any("mismatch" in w for w in result.warnings)
    json.dumps(result.to_dict())  # the JSON shape is plain


def test_sample_ratio_mismatch_warns(tmp_path) -> None:
    _write(tmp_path, {"A": 1000, "B": 800})
    result = ab(load_project(tmp_path / "kpiforge.yaml"), "conversion_rate", variant="variant",
                control="A", period="2026-10")
    (warning,) = [w for w in result.warnings if "mismatch" in w]
    assert "A: 1000" in warning and "B: 800" in warning and "equal split" in warning
    p = scipy_stats.chisquare([1000, 800]).pvalue
    assert f"{p:.3g}" in warning


@pytest.mark.parametrize(("split", "warns"), [
    ({"A": 5, "B": 4}, False),  # the planned 5:4 split: no mismatch
    ({"A": 1, "B": 1}, True),
    ({"A": 4, "B": 5}, True),
])
def test_sample_ratio_mismatch_follows_the_planned_split(tmp_path, split, warns) -> None:
    _write(tmp_path, {"A": 1000, "B": 800})
    result = ab(load_project(tmp_path / "kpiforge.yaml"), "conversion_rate", variant="variant",
                control="A", period="2026-10", split=split)
    assert any("mismatch" in w for w in result.warnings) == warns


def test_several_variants_are_holm_adjusted(tmp_path) -> None:
    groups = _write(tmp_path, {"A": 700, "B": 700, "C": 700, "D": 700}, seed=3)
    result = ab(load_project(tmp_path / "kpiforge.yaml"), "revenue_per_customer",
                variant="variant", control="A", period="2026-10")
    raw = [scipy_stats.ttest_ind(groups[v]["revenue"], groups["A"]["revenue"], equal_var=False).pvalue
           for v in "BCD"]
    _, adjusted, _, _ = multitest.multipletests(raw, method="holm")
    assert [r.variant for r in result.results] == ["B", "C", "D"]
    assert [r.p_value for r in result.results] == pytest.approx(list(adjusted), rel=1e-7)


@pytest.mark.parametrize(("t", "df"), [(0.0, 3), (1.7, 2.5), (-2.2, 10), (4.0, 150.3), (0.3, 1)])
def test_student_t_matches_scipy(t, df) -> None:
    assert student_t_sf(t, df) == pytest.approx(scipy_stats.t.sf(t, df), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(("x", "df"), [(0.5, 1), (3.84, 1), (10.0, 3), (2.0, 7), (40.0, 5)])
def test_chi2_matches_scipy(x, df) -> None:
    assert chi2_sf(x, df) == pytest.approx(scipy_stats.chi2.sf(x, df), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("p", [[0.01, 0.04, 0.03], [0.5, 0.001], [0.2, 0.2, 0.9, 0.01]])
def test_holm_matches_statsmodels(p) -> None:
    assert holm(p) == pytest.approx(list(multitest.multipletests(p, method="holm")[1]))


@pytest.mark.parametrize(("kpi", "message"), [
    ("ctr", "must come from one source"),
    ("ltv", "an A/B test needs 'a / b'"),
])
def test_other_shapes_are_refused(tmp_path, kpi, message) -> None:
    _write(tmp_path, {"A": 50, "B": 50})
    with pytest.raises(KpiforgeError, match=message):
        ab(load_project(tmp_path / "kpiforge.yaml"), kpi, variant="variant", control="A",
           period="2026-10")


def _cli(tmp_path: Path, capsys, *args: str) -> tuple[int, str, str]:
    from kpiforge.cli import main

    try:
        main(["ab", "--project", str(tmp_path / "kpiforge.yaml"), *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_json_equals_the_api(tmp_path, capsys) -> None:
    _write(tmp_path, {"A": 300, "B": 300, "C": 300})
    code, out, _ = _cli(tmp_path, capsys, "--kpi", "aov", "--variant", "variant", "--control", "A",
                        "--period", "2026-10", "--format", "json")
    assert code == 0
    want = ab(load_project(tmp_path / "kpiforge.yaml"), "aov", variant="variant", control="A",
              period="2026-10").to_dict()
    got = json.loads(out)
    assert got == json.loads(json.dumps(want))
    assert set(got["results"][0]) == {"kpi", "variant", "control", "value", "control_value", "diff",
                                      "ci_low", "ci_high", "lift", "p_value", "test", "significant"}


@pytest.mark.parametrize(("args", "message"), [
    (["--kpi", "ctr", "--variant", "variant", "--control", "A"], "must come from one source"),
    (["--kpi", "aov", "--variant", "country", "--control", "A"], "no dimension 'country'"),
    (["--kpi", "aov", "--variant", "variant", "--control", "Z"], "no data for control 'Z'"),
    (["--kpi", "aov", "--variant", "variant", "--control", "A", "--period", "2026-10",
      "--from", "2026-10-01"], "not both"),
    (["--kpi", "aov", "--variant", "variant", "--control", "A", "--split", "A:1"],
     "not VARIANT=WEIGHT"),
])
def test_cli_errors_are_messages(tmp_path, capsys, args, message) -> None:
    _write(tmp_path, {"A": 30, "B": 30})
    code, _, err = _cli(tmp_path, capsys, *args)
    assert code != 0
    assert message in err and "Traceback" not in err


def test_cli_table(tmp_path, capsys) -> None:
    _write(tmp_path, {"A": 1000, "B": 800})
    code, out, err = _cli(tmp_path, capsys, "--kpi", "conversion_rate", "--variant", "variant",
                          "--control", "A", "--period", "2026-10")
    assert code == 0
    assert "two-proportion z-test" in out and "sample ratio mismatch" in err
    code, out, err = _cli(tmp_path, capsys, "--kpi", "conversion_rate", "--variant", "variant",
                          "--control", "A", "--period", "2026-10", "--split", "A=5,B=4")
    assert code == 0 and "mismatch" not in err


from hypothesis import given, settings, strategies as st  # noqa: E402

from kpiforge._ab_stats import two_proportion, welch  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5000), st.integers(2, 5000), st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_two_proportion_agrees_with_statsmodels(n1, n0, f1, f0) -> None:
    x1, x0 = round(n1 * f1), round(n0 * f0)
    est = two_proportion(x1, n1, x0, n0)
    pooled = (x1 + x0) / (n1 + n0)
    if 0 < pooled < 1:
        assert est.p_value == pytest.approx(proportion.proportions_ztest([x1, x0], [n1, n0])[1],
                                            rel=1e-7, abs=1e-12)
    lo, hi = proportion.confint_proportions_2indep(x1, n1, x0, n0, method="wald")
    assert (est.ci_low, est.ci_high) == pytest.approx((lo, hi), rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 400), st.integers(3, 400), st.floats(0.1, 50))
def test_welch_agrees_with_scipy(seed, n1, n0, spread) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(10, spread, n1), rng.normal(11, 1.0, n0)
    est = welch(a.sum(), (a * a).sum(), n1, b.sum(), (b * b).sum(), n0)
    res = scipy_stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert est.p_value == pytest.approx(res.pvalue, rel=1e-6, abs=1e-12)
    assert (est.ci_low, est.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-7)
