"""A KPI's thresholds and where their figures come from (re-exported by ``_model``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SOURCE_KINDS", "ThresholdSource", "Thresholds"]

# the guide's own figures, a published benchmark, a practitioner's choice, a contract (an SLA)
SOURCE_KINDS = ("guide", "benchmark", "practitioner", "contract")


@dataclass(frozen=True, slots=True)
class ThresholdSource:
    """Where a KPI's threshold figures come from: ``kind`` is one of :data:`SOURCE_KINDS`,
    ``text`` says which figure and why, ``url`` points to the reference (both optional)."""

    kind: str
    text: str = ""
    url: str = ""

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("kind", self.kind), ("text", self.text), ("url", self.url)) if v}


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
    source: ThresholdSource | None = None

    def to_dict(self) -> dict[str, float]:
        """The levels only: what status and alerts compare values with."""
        return {k: v for k, v in (("good", self.good), ("warning", self.warning),
                                   ("critical", self.critical)) if v is not None}
