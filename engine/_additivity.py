"""Where a non-additive input cannot be answered: summed across a key or to another grain.

A source's rows may already be distinct counts per key and period (the ad platforms' monthly
reach per channel). Summing such rows across a channel counts a person reached on two channels
twice, and summing months into a quarter counts a person reached in two months twice; no SQL
over those rows can recompute the distinct count. So the run refuses, input by input, with a
reason, instead of giving a number. An input whose source declares neither ``grain`` nor
``keys`` is aggregated from raw rows (``count_distinct`` recomputes at any grain) and is not
blocked here.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ._reasons import Reason
from ._run_plan import RunPlan

__all__ = ["non_additive_inputs", "not_additive_reasons"]


def non_additive_inputs(definitions: Mapping[str, Any]) -> frozenset[str]:
    """Input names that some definition declares ``non_additive``."""
    return frozenset(name for d in definitions.values() for name, spec in d.inputs.items()
                     if spec.additivity == "non_additive")


def not_additive_reasons(definitions: Mapping[str, Any], sources: Mapping[str, Any],
                         plan: RunPlan, grain: str, dims: Sequence[str]) -> dict[str, Reason]:
    """The reason each blocked input of ``plan`` is null at ``grain`` split by ``dims``."""
    blocked: dict[str, Reason] = {}
    non_additive = non_additive_inputs(definitions)
    for name, source in plan.provided.items():
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
