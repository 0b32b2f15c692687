"""Formula engine benchmark: is the safety layer cheap enough?

Run ``python benchmarks/bench_formulas.py`` (``--quick`` for a fast, noisier run; ``--slices``
to change the big size). Every baseline is measured in the same process and run, interleaved
with what it is compared with, so the ratios mean something on any machine. Each target is
printed as ``target ... : measured X.XXx -> met|missed``.

* the whole bundled catalog (every KPI, two built on others, thresholds and a target)
  through ``Engine.evaluate`` over 1,000,000 and 1,000 slices, against the same formulas
  hand-written in numpy and classified with ``np.select``: what a person would write who
  needs values and statuses per slice and nothing else. The baseline gets no safety at all
  (no input checks, no reasons, no snapping to thresholds); it does test for NaN, because an
  undefined value (0 / 0) must not get a status, and it returns small integer status codes
  as ``Engine.evaluate`` does (object arrays are built only when ``Result.status`` is read).
  Targets: within 1.5x at 1e6 slices, within 3x at 1e3; with ``--busy`` the two runs are
  repeated while another process spins on the other core, and must meet the same targets
  (BLAS calls, which the engine used to make, slowed down by a factor of 60 then).
* scalar, one formula: ``Formula.evaluate`` against one asteval ``Interpreter`` created once
  and reused, evaluating the text on every call. A fresh ``Interpreter()`` per call would
  flatter us (building one costs more than the evaluation); re-parsing is what asteval's own
  API does for a text. Target: >= 5x faster.
* scalar, whole catalog: ``Formula.evaluate`` for 30 formulas against the same pre-parsed
  nodes run by a bare asteval ``Interpreter`` (no fresh symbol table, no checks): the floor
  our checks add to. Informational; kpiforge's interpreter has leaner ``name`` and ``binop``
  handlers than asteval's own (``_formula_interp``), so it may come in under this floor.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

from asteval import Interpreter

from kpiforge import Engine, Status  # needs `pip install -e .`
from kpiforge._formulas import compile_formula, default_functions

# (formula, the same KPI hand-written in numpy)
CATALOG: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("clicks / impressions * 100", lambda v: v["clicks"] / v["impressions"] * 100),
    ("conversions / clicks * 100", lambda v: v["conversions"] / v["clicks"] * 100),
    ("cost / clicks", lambda v: v["cost"] / v["clicks"]),
    ("cost / conversions", lambda v: v["cost"] / v["conversions"]),
    ("revenue / cost", lambda v: v["revenue"] / v["cost"]),
    ("(revenue - cost) / cost * 100", lambda v: (v["revenue"] - v["cost"]) / v["cost"] * 100),
    ("revenue_per_customer * gross_margin / (churn / 100)",
     lambda v: v["revenue_per_customer"] * v["gross_margin"] / (v["churn"] / 100)),
    ("(revenue - cogs) / revenue * 100", lambda v: (v["revenue"] - v["cogs"]) / v["revenue"] * 100),
    ("(revenue - cogs - opex) / revenue * 100",
     lambda v: (v["revenue"] - v["cogs"] - v["opex"]) / v["revenue"] * 100),
    ("revenue / orders", lambda v: v["revenue"] / v["orders"]),
    ("orders / visits * 100", lambda v: v["orders"] / v["visits"] * 100),
    ("bounces / sessions * 100", lambda v: v["bounces"] / v["sessions"] * 100),
    ("churned_customers / customers * 100", lambda v: v["churned_customers"] / v["customers"] * 100),
    ("new_customers / customers * 100", lambda v: v["new_customers"] / v["customers"] * 100),
    ("refunds / revenue * 100", lambda v: v["refunds"] / v["revenue"] * 100),
    ("(revenue - prev_revenue) / prev_revenue * 100",
     lambda v: (v["revenue"] - v["prev_revenue"]) / v["prev_revenue"] * 100),
    ("cost / new_customers", lambda v: v["cost"] / v["new_customers"]),
    ("revenue_per_customer * gross_margin / (churn / 100) / (cost / new_customers)",
     lambda v: v["revenue_per_customer"] * v["gross_margin"] / (v["churn"] / 100)
     / (v["cost"] / v["new_customers"])),
    ("active_users / signups * 100", lambda v: v["active_users"] / v["signups"] * 100),
    ("tickets_resolved / tickets * 100", lambda v: v["tickets_resolved"] / v["tickets"] * 100),
    ("uptime_minutes / total_minutes * 100", lambda v: v["uptime_minutes"] / v["total_minutes"] * 100),
    ("units_sold / inventory", lambda v: v["units_sold"] / v["inventory"]),
    ("revenue / active_users", lambda v: v["revenue"] / v["active_users"]),
    ("(active_users - prev_active_users) / prev_active_users * 100",
     lambda v: (v["active_users"] - v["prev_active_users"]) / v["prev_active_users"] * 100),
    ("returns / units_sold * 100", lambda v: v["returns"] / v["units_sold"] * 100),
    ("cost / impressions * 1000", lambda v: v["cost"] / v["impressions"] * 1000),
    ("(clicks + conversions * 5) / impressions",
     lambda v: (v["clicks"] + v["conversions"] * 5) / v["impressions"]),
    ("gross_margin * revenue - opex", lambda v: v["gross_margin"] * v["revenue"] - v["opex"]),
    ("max(revenue - cost, 0) / revenue * 100",
     lambda v: np.maximum(v["revenue"] - v["cost"], 0) / v["revenue"] * 100),
    ("round((revenue - refunds - cogs) / orders, 2)",
     lambda v: np.round((v["revenue"] - v["refunds"] - v["cogs"]) / v["orders"], 2)),
]

INPUTS = sorted({
    "clicks", "impressions", "conversions", "cost", "revenue", "revenue_per_customer",
    "gross_margin", "churn", "cogs", "opex", "orders", "visits", "bounces", "sessions",
    "churned_customers", "customers", "new_customers", "refunds", "prev_revenue",
    "active_users", "signups", "tickets_resolved", "tickets", "uptime_minutes", "total_minutes",
    "units_sold", "inventory", "prev_active_users", "returns",
})


def median_times(fns: list[Callable[[], Any]], repeats: int, number: int = 1) -> list[float]:
    """Median seconds per call of each function over ``repeats`` batches of ``number`` calls.

    The batches are interleaved (a, b, a, b, ...) so that drift in the machine's state (page
    cache, frequency, a neighbour's load) hits both sides of a comparison alike.
    """
    for fn in fns:
        fn()  # warm up (thread-local interpreter, caches)
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            out.append((time.perf_counter() - start) / number)
    return [statistics.median(s) for s in samples]


def arrays(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(1.0, 1000.0, n) for name in INPUTS}


def fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:9.3f} ms"
    return f"{seconds * 1e6:9.2f} µs"


# The bundled catalog by hand: each KPI's formula in numpy, reading the KPIs it uses from
# ``k`` (already computed), in the catalog's order.
BUNDLED: dict[str, Callable[[dict[str, Any], dict[str, Any]], Any]] = {
    "cpc": lambda v, k: v["cost"] / v["clicks"],
    "cpl": lambda v, k: v["cost"] / v["leads"],
    "ctr": lambda v, k: v["clicks"] / v["impressions"] * 100,
    "lead_conversion_rate": lambda v, k: v["leads"] / v["landing_page_visitors"] * 100,
    "avg_session_duration": lambda v, k: v["total_session_duration"] / v["sessions"],
    "brand_mentions": lambda v, k: v["mentions"],
    "frequency": lambda v, k: v["impressions"] / v["reach"],
    "impressions": lambda v, k: v["impressions"],
    "negative_mention_share": lambda v, k: v["negative_mentions"] / v["mentions"] * 100,
    "net_sentiment_score":
        lambda v, k: (v["positive_mentions"] - v["negative_mentions"]) / v["mentions"] * 100,
    "neutral_mention_share": lambda v, k: v["neutral_mentions"] / v["mentions"] * 100,
    "organic_traffic_share": lambda v, k: v["organic_sessions"] / v["sessions"] * 100,
    "pageviews": lambda v, k: v["pageviews"],
    "positive_mention_share": lambda v, k: v["positive_mentions"] / v["mentions"] * 100,
    "post_likes": lambda v, k: v["likes"],
    "reach": lambda v, k: v["reach"],
    "sessions": lambda v, k: v["sessions"],
    "social_followers": lambda v, k: v["followers"],
    "traffic_source_share": lambda v, k: v["sessions"] / v["total(sessions)"] * 100,
    "unique_visitors": lambda v, k: v["unique_visitors"],
    "aov": lambda v, k: v["revenue"] / v["orders"],
    "conversion_rate": lambda v, k: v["conversions"] / v["site_visitors"] * 100,
    "cpa": lambda v, k: v["sales_marketing_cost"] / v["new_customers"],
    "lead_to_customer_rate": lambda v, k: v["new_customers"] / v["leads"] * 100,
    "revenue_per_customer": lambda v, k: v["revenue"] / v["customers"],
    "marketing_originated_revenue_share":
        lambda v, k: v["marketing_revenue"] / v["revenue"] * 100,
    "churn_rate": lambda v, k: v["customers_lost"] / v["customers_start"] * 100,
    "csat": lambda v, k: v["satisfied_responses"] / v["csat_responses"] * 100,
    "ltv": lambda v, k: v["revenue_per_customer"] * v["gross_margin"] / (k["churn_rate"] / 100),
    "ltv_cac_ratio": lambda v, k: k["ltv"] / k["cpa"],
    "nps": lambda v, k: (v["promoters"] - v["detractors"]) / v["nps_responses"] * 100,
    "retention_rate":
        lambda v, k: (v["customers_end"] - v["new_customers"]) / v["customers_start"] * 100,
    "avg_keyword_position": lambda v, k: v["keyword_position_sum"] / v["tracked_keywords"],
    "bounce_rate": lambda v, k: v["bounced_sessions"] / v["sessions"] * 100,
    "content_conversion_rate": lambda v, k: v["content_conversions"] / v["content_views"] * 100,
    "organic_traffic": lambda v, k: v["organic_sessions"],
    "pages_per_session": lambda v, k: v["pageviews"] / v["sessions"],
}

# Status in its enum order, as uint8 like the engine's codes: with plain ints np.select would
# build int64 arrays, eight times the memory traffic, and flatter us
GOOD, OK, WARNING, CRITICAL, UNKNOWN = (np.uint8(i) for i in range(5))


def select_status(engine: Engine) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Per KPI, its classification written with ``np.select`` from its thresholds."""
    out: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for kpi, d in engine.definitions.items():
        th = d.thresholds
        if d.direction.value == "target":
            tol = d.tolerance if d.tolerance is not None else (th.good or 0.0)

            def f(x: np.ndarray, t: float = d.target or 0.0, tol: float = tol,
                  w: float | None = th.warning, c: float | None = th.critical) -> np.ndarray:
                dist = np.abs(x - t)
                conds = [np.isnan(x)] + ([dist > c] if c is not None else []) \
                    + ([dist > w] if w is not None else []) + [dist <= tol]
                codes = [UNKNOWN] + ([CRITICAL] if c is not None else []) \
                    + ([WARNING] if w is not None else []) + [GOOD]
                return np.select(conds, codes, OK)
        elif th.good is None and th.warning is None and th.critical is None:
            def f(x: np.ndarray) -> np.ndarray:
                return np.where(np.isnan(x), UNKNOWN, OK)
        elif d.direction.value == "higher_is_better":
            def f(x: np.ndarray, g: Any = th.good, w: Any = th.warning,
                  c: Any = th.critical) -> np.ndarray:
                return np.select([np.isnan(x), x < c, x < w, x >= g],
                                 [UNKNOWN, CRITICAL, WARNING, GOOD], OK)
        else:
            def f(x: np.ndarray, g: Any = th.good, w: Any = th.warning,
                  c: Any = th.critical) -> np.ndarray:
                return np.select([np.isnan(x), x > c, x > w, x <= g],
                                 [UNKNOWN, CRITICAL, WARNING, GOOD], OK)
        out[kpi] = f
    return out


def bundled_inputs(engine: Engine, n: int, seed: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    names = sorted({name for d in engine.definitions.values() for name in d.inputs})
    data = {name: rng.uniform(1.0, 1000.0, n) for name in names}
    data["nps_responses"] = data["promoters"] + data["detractors"] + rng.uniform(0, 100, n)
    data["gross_margin"] = rng.uniform(0.05, 0.95, n)  # a ratio: its range is [0, 1]
    # total(x) is an input like any other to Engine.evaluate (the run fills it in)
    data["total(sessions)"] = data["sessions"] * rng.uniform(1.0, 20.0, n)
    return data


def target_line(what: str, limit: str, ratio: float, met: bool) -> str:
    return f"target {what} {limit}: measured {ratio:.2f}x -> {'met' if met else 'missed'}"


def bench_engine(n: int, repeats: int, number: int) -> tuple[list[str], float, float, float]:
    engine = Engine.load()
    data = bundled_inputs(engine, n)
    classify = select_status(engine)
    order = list(engine.definitions)
    assert set(order) == set(BUNDLED), "the hand-written catalog must cover the bundled one"

    def by_hand() -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        with np.errstate(all="ignore"):
            computed: dict[str, np.ndarray] = {}
            for kpi in order:
                value = computed[kpi] = np.asarray(BUNDLED[kpi](data, computed), dtype=float)
                out[kpi] = (value, classify[kpi](value))
        return out

    def ours() -> Any:
        return engine.evaluate(data)

    expected, got = by_hand(), ours()  # the same numbers and statuses, or the ratio is moot
    statuses = list(Status)
    for kpi, (value, status) in expected.items():
        np.testing.assert_allclose(got[kpi].value, value)
        assert (got[kpi].status == np.array(statuses, dtype=object)[status]).all(), kpi
    t_ours, t_hand = median_times([ours, by_hand], repeats, number)
    return [fmt(t_ours), fmt(t_hand)], t_ours, t_hand, t_ours / t_hand


def _spin(started: Any, seconds: float) -> None:
    """Keep one core busy for at most ``seconds`` (the parent ends it sooner)."""
    started.set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@contextlib.contextmanager
def other_core_busy(limit: float = 900.0) -> Any:
    """A process spinning on another core while the block runs; it stops by itself after
    ``limit`` seconds whatever happens to this one."""
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    spinner = ctx.Process(target=_spin, args=(started, limit), daemon=True)
    spinner.start()
    try:
        if not started.wait(60):
            raise RuntimeError("the spinning process did not start")
        yield
    finally:
        spinner.terminate()
        spinner.join(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats and 100,000 big slices (noisier; for a smoke test)")
    parser.add_argument("--slices", type=int, default=None,
                        help="slices of the big catalog run (default 1,000,000; quick 100,000)")
    parser.add_argument("--busy", action="store_true",
                        help="also run the catalog comparisons with the other core kept busy")
    args = parser.parse_args(argv)
    big_repeats, small_repeats, scalar_number = (3, 5, 300) if args.quick else (9, 15, 3000)
    big = args.slices or (100_000 if args.quick else 1_000_000)

    lines: list[str] = []
    print(f"kpiforge formula benchmark ({'quick' if args.quick else 'full'}; "
          f"python {sys.version.split()[0]}, numpy {np.__version__})")

    # ---- the bundled catalog through Engine.evaluate, against numpy + np.select
    for busy in (False, True) if args.busy else (False,):
        when = " (other core busy)" if busy else ""
        with other_core_busy() if busy else contextlib.nullcontext():
            for n, repeats, number, limit in ((big, big_repeats, 1, 1.5),
                                              (1_000, small_repeats, 20, 3.0)):
                (s_ours, s_hand), _, _, ratio = bench_engine(n, repeats, number)
                print(f"Engine.evaluate, bundled catalog, {n:,} slices{when}: "
                      f"{s_ours.strip()}; numpy + np.select {s_hand.strip()}")
                lines.append(target_line(f"Engine.evaluate at {n:,} slices{when}",
                                         f"<= {limit}x numpy", ratio, ratio <= limit))

    functions = default_functions()
    formulas = [compile_formula(text, functions=functions) for text, _ in CATALOG]

    # ---- scalar, one formula vs a reused interpreter re-parsing the text
    text = CATALOG[6][0]
    formula = formulas[6]
    scalars = {name: float(i + 1) for i, name in enumerate(INPUTS)}
    reused = Interpreter(minimal=True)
    reused.symtable.update(scalars)

    def reused_eval() -> None:
        reused.eval(text)
        reused.code_text.clear()  # eval() appends the text every call; keep the run fair

    assert formula.evaluate(scalars).value == float(reused.eval(text))
    t_ours, t_reparse = median_times([lambda: formula.evaluate(scalars), reused_eval],
                                     small_repeats, scalar_number)
    speedup = t_reparse / t_ours
    print(f"scalar Formula.evaluate: {fmt(t_ours).strip()}; reused asteval "
          f"interp.eval(text) {fmt(t_reparse).strip()}")
    lines.append(target_line("scalar evaluate vs reused asteval interpreter", ">= 5x faster",
                             speedup, speedup >= 5))

    # ---- scalar, whole catalog vs bare asteval on pre-parsed nodes (the floor; info)
    bare = Interpreter(minimal=True)
    bare.symtable.update(scalars)
    nodes = [bare.parse(t) for t, _ in CATALOG]

    def bare_catalog() -> None:
        run = bare.run
        for node in nodes:
            run(node)

    def ours_catalog() -> None:
        for f in formulas:
            f.evaluate(scalars)

    for f, node in zip(formulas, nodes):
        assert f.evaluate(scalars).value == float(bare.run(node))
    t_ours, t_bare = median_times([ours_catalog, bare_catalog], small_repeats,
                                  scalar_number // 10)
    print(f"catalog of 30 on scalars: {fmt(t_ours).strip()}; bare asteval on pre-parsed "
          f"nodes {fmt(t_bare).strip()} ({t_ours / t_bare:.2f}x; information, no target)")
    print()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
