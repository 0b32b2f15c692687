"""The pack ``acme:sales``: the sales team's KPIs, on top of ``kpiforge:standard``.

Its formulas use standard KPIs (``revenue_per_customer``, ``lead_to_customer_rate``, ``cpl``),
so it requires that pack: ``kpiforge validate -d acme:sales``, or ``definitions: [acme:sales]``
in a project, loads both.
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
    # its formulas use standard KPIs: `-d acme:sales` alone loads kpiforge:standard too
    register("acme:sales", files=resources.files(__name__) / "definitions", version=VERSION,
             owner="sales", requires=["kpiforge:standard"],
             doc="Sales KPIs of Acme: revenue per lead, lead ROI, win rate.")
