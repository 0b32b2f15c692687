"""Formula engine benchmark: is the safety layer cheap enough?

Run ``python benchmarks/bench_formulas.py`` (``--quick`` for a fast, noisier run). Everything
compared is measured in the same process and run, so the ratios are meaningful on any machine:

* vectorised: a 30-KPI catalog evaluated over 1,000,000 and 1,000 slices with
  ``Formula.evaluate`` vs the same formulas hand-written in numpy;
* scalar, one formula: ``Formula.evaluate`` vs asteval re-parsing the text on every call
  (a fresh ``Interpreter().eval(text)``, and a reused interpreter's ``eval(text)``);
* scalar, whole catalog: ``Formula.evaluate`` for all 30 vs the same pre-parsed nodes run by
  a bare asteval ``Interpreter`` (no fresh symbol table, no checks: the floor we add to).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

from asteval import Interpreter

from kpiforge._formulas import compile_formula, default_functions  # needs `pip install -e .`

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    args = parser.parse_args(argv)
    big_repeats, small_repeats, scalar_number = (3, 5, 300) if args.quick else (9, 15, 3000)

    functions = default_functions()
    formulas = [compile_formula(text, functions=functions) for text, _ in CATALOG]
    rows: list[tuple[str, str, str, float, str, bool | None]] = []

    # ---- vectorised
    for n, repeats, limit in ((1_000_000, big_repeats, 1.1), (1_000, small_repeats * 20, 2.0)):
        data = arrays(n)

        def ours() -> None:
            for f in formulas:
                f.evaluate(data)

        def numpy_by_hand() -> None:
            with np.errstate(all="ignore"):
                for _, fn in CATALOG:
                    fn(data)

        for f, (_, fn) in zip(formulas, CATALOG):  # same numbers, or the comparison is moot
            np.testing.assert_allclose(f.evaluate(data).value, fn(data))
        number = 1 if n >= 100_000 else 20
        t_ours, t_np = median_times([ours, numpy_by_hand], repeats, number)
        ratio = t_ours / t_np
        rows.append((f"catalog, {n:,} slices", fmt(t_ours), f"numpy {fmt(t_np).strip()}",
                     ratio, f"<= {limit}x numpy", ratio <= limit))

    # ---- scalar, one formula vs re-parsing
    text = CATALOG[6][0]
    formula = formulas[6]
    scalars = {name: float(i + 1) for i, name in enumerate(INPUTS)}

    def fresh_eval() -> None:
        interp = Interpreter(minimal=True)
        interp.symtable.update(scalars)
        interp.eval(text)

    reused = Interpreter(minimal=True)
    reused.symtable.update(scalars)

    def reused_eval() -> None:
        reused.eval(text)
        reused.code_text.clear()  # eval() appends the text every call; keep the run fair

    t_ours, t_reparse = median_times([lambda: formula.evaluate(scalars), reused_eval],
                                     small_repeats, scalar_number)
    (t_fresh,) = median_times([fresh_eval], small_repeats, max(scalar_number // 30, 10))
    speedup = t_fresh / t_ours
    rows.append(("scalar evaluate vs Interpreter().eval(text)", fmt(t_ours),
                 f"asteval {fmt(t_fresh).strip()}", speedup, ">= 5x faster", speedup >= 5))
    # stricter than the target's baseline: an interpreter reused, so only parsing is repeated
    speedup = t_reparse / t_ours
    rows.append(("scalar evaluate vs reused interp.eval(text)", fmt(t_ours),
                 f"asteval {fmt(t_reparse).strip()}", speedup, "(info, no target)", None))

    # ---- scalar, whole catalog vs bare asteval on pre-parsed nodes
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
    ratio = t_ours / t_bare
    rows.append(("catalog of 30 on scalars", fmt(t_ours), f"bare asteval {fmt(t_bare).strip()}",
                 ratio, "<= 1.5x bare asteval", ratio <= 1.5))

    # ---- report
    print(f"kpiforge formula benchmark ({'quick' if args.quick else 'full'}; "
          f"python {sys.version.split()[0]}, numpy {np.__version__})")
    header = ("measurement", "kpiforge", "baseline", "ratio", "target", "met")
    widths = (44, 12, 28, 7, 22, 4)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for name, ours_s, base_s, ratio, target, met in rows:
        verdict = "-" if met is None else "yes" if met else "NO"
        cells = (name, ours_s.strip(), base_s, f"{ratio:.2f}x", target, verdict)
        print("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)))
    print()
    print("Where the vectorised targets are missed, the gap is structural: every evaluation makes")
    print("one pass over the result to find non-finite slices (numpy by hand does not), and")
    print("asteval spends about a microsecond per AST node, which at 1,000 slices costs more than")
    print("numpy's arithmetic itself.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
