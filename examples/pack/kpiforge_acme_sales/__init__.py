"""The pack ``acme:sales``: the sales team's KPIs, on top of ``kpiforge:standard``.

Its formulas use standard KPIs (``revenue_per_customer``, ``lead_to_customer_rate``, ``cpl``),
so it is loaded with the standard catalog: ``kpiforge validate -d kpiforge:standard -d
acme:sales``, or ``definitions: [kpiforge:standard, acme:sales]`` in a project.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from kpiforge import hookimpl

__all__ = ["kpiforge_register_packs"]

#: the pack's version moves with the distribution's: one number for reviewers to compare
VERSION = "1.2.0"


@hookimpl
def kpiforge_register_packs(register: Any) -> None:
    register("acme:sales", files=resources.files(__name__) / "definitions", version=VERSION,
             owner="sales", doc="Sales KPIs of Acme: revenue per lead, lead ROI, win rate.")
