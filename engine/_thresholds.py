"""A KPI's thresholds and where their figures come from (re-exported by ``_model``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LEVELS", "SOURCE_KINDS", "ThresholdSource", "Thresholds"]

LEVELS = ("good", "warning", "critical")

# the guide's own figures, a published benchmark, a practitioner's choice, a contract (an SLA)
SOURCE_KINDS = ("guide", "benchmark", "practitioner", "contract")


@dataclass(frozen=True, slots=True)
class ThresholdSource:
    """Where threshold figures come from: ``kind`` is one of :data:`SOURCE_KINDS`, ``levels``
    the levels it is for (empty: every level of the KPI), ``text`` says which figure and why,
    ``url`` points to the reference (both optional). A KPI whose good level is the guide's but
    whose warning level is a practitioner's choice has one source of each kind."""

    kind: str
    levels: tuple[str, ...] = ()
    text: str = ""
    url: str = ""

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in (("kind", self.kind), ("levels", list(self.levels)),
                                  ("text", self.text), ("url", self.url)) if v}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The values at which a KPI becomes good, warning or critical (each optional)."""

    good: float | None = None
    warning: float | None = None
    critical: float | None = None
    # the currency money thresholds are written in (None: the KPI's own currency)
    currency: str | None = None
    # set when a project converted them (kpiforge._currency): the currency written and the rate
    converted_from: str | None = None
    fx_rate: float | None = None
    sources: tuple[ThresholdSource, ...] = ()

    def unsourced(self) -> tuple[str, ...]:
        """The levels set here that no source covers."""
        covered = {level for s in self.sources for level in (s.levels or LEVELS)}
        return tuple(k for k in LEVELS if getattr(self, k) is not None and k not in covered)

    def to_dict(self) -> dict[str, float]:
        """The levels only: what status and alerts compare values with."""
        return {k: v for k, v in (("good", self.good), ("warning", self.warning),
                                   ("critical", self.critical)) if v is not None}
