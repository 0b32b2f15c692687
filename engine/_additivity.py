"""Where a non-additive input cannot be answered: summed across a key or to another grain.

A source's rows may already be distinct counts per key and period (the ad platforms' monthly
reach per channel). Summing such rows across a channel counts a person reached on two channels
twice, and summing months into a quarter counts a person reached in two months twice; no SQL
over those rows can recompute the distinct count. So the run refuses, input by input, with a
reason, instead of giving a number. An input whose source declares neither ``grain`` nor
``keys`` is aggregated from raw rows (``count_distinct`` recomputes at any grain) and is not
blocked here.

A semi-additive input (a snapshot: customers at the start of a period) is summed across
dimensions but never over time: a source that sums (or averages) it is only answered at the
source's declared native grain, where each period holds one snapshot; ``agg: first`` / ``last``
takes the right one at any grain.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ._reasons import Reason
from ._run_plan import RunPlan

__all__ = ["non_additive_inputs", "not_additive_reasons", "snapshot_inputs"]


def non_additive_inputs(definitions: Mapping[str, Any]) -> frozenset[str]:
    """Input names that some definition declares ``non_additive``."""
    return frozenset(name for d in definitions.values() for name, spec in d.inputs.items()
                     if spec.additivity == "non_additive")


def snapshot_inputs(definitions: Mapping[str, Any]) -> dict[str, str]:
    """Semi-additive input names and the snapshot that counts over time (``first``/``last``)."""
    return {name: spec.time_agg or "last" for d in definitions.values()
            for name, spec in d.inputs.items() if spec.additivity == "semi_additive"}


def _snapshot_reason(name: str, time_agg: str, config: Any, grain: str) -> Reason | None:
    """A snapshot summed over time: its source's agg is not the snapshot's ``first``/``last``
    and the rows are not already one per period of the run's grain."""
    spec = config.inputs.get(name)
    if spec is None or spec.agg in ("first", "last") or config.grain == grain:
        return None
    native = f"one row per {config.grain}" if config.grain else "no declared grain"
    return Reason("not_additive", f"{name} is a snapshot ({time_agg} of each period); source "
                  f"'{config.name}' takes its {spec.agg} with {native}, which would add up the "
                  f"snapshots of a {grain}: use agg: {time_agg}", name)


def not_additive_reasons(definitions: Mapping[str, Any], sources: Mapping[str, Any],
                         plan: RunPlan, grain: str, dims: Sequence[str]) -> dict[str, Reason]:
    """The reason each blocked input of ``plan`` is null at ``grain`` split by ``dims``."""
    blocked: dict[str, Reason] = {}
    non_additive = non_additive_inputs(definitions)
    snapshots = snapshot_inputs(definitions)
    for name, source in plan.provided.items():
        if name in snapshots:
            reason = _snapshot_reason(name, snapshots[name], sources[source], grain)
            if reason is not None:
                blocked[name] = reason
            continue
        if name not in non_additive:
            continue
        config = sources[source]
        across = [key for key in config.keys if key not in dims]
        if across:
            blocked[name] = Reason(
                "not_additive", f"{name} cannot be summed across {', '.join(across)} "
                f"(source '{source}' gives a distinct count per {', '.join(config.keys)})", name)
        elif config.grain is not None and config.grain != grain:
            blocked[name] = Reason(
                "not_additive", f"{name} is a distinct count per {config.grain} (source "
                f"'{source}'); it cannot be computed by {grain}", name)
    return blocked
