"""Whether a KPI's thresholds agree with its direction: a check of loading definitions.

Apart from :mod:`._status` (classifying values, which needs numpy) so that loading a catalog
(``kpiforge validate``) does not import numpy.
"""

from __future__ import annotations

from ._model import Direction, Thresholds

__all__ = ["threshold_order_problem"]


def threshold_order_problem(direction: Direction, thresholds: Thresholds) -> str | None:
    """Why the thresholds contradict the direction, or None when they are consistent."""
    named = [(n, v) for n, v in (("critical", thresholds.critical), ("warning", thresholds.warning),
                                 ("good", thresholds.good)) if v is not None]
    if direction is Direction.TARGET:
        for name, v in named:
            if v < 0:
                return f"{name} is a distance from the target and cannot be negative ({v:g})"
        if thresholds.warning is not None and thresholds.critical is not None \
                and thresholds.warning > thresholds.critical:
            return (f"warning ({thresholds.warning:g}) must not be farther from the target than "
                    f"critical ({thresholds.critical:g})")
        return None
    higher = direction is Direction.HIGHER_IS_BETTER
    for (n1, v1), (n2, v2) in zip(named, named[1:]):
        if (v1 > v2) if higher else (v1 < v2):
            relation = "<=" if higher else ">="
            return (f"for {direction.value}, {n1} ({v1:g}) must be {relation} {n2} ({v2:g})")
    return None
