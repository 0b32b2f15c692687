"""The bundled catalog as the pack ``kpiforge:standard``, registered like any other pack.

Its version is kpiforge's own: the catalog changes only with a kpiforge release.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import kpiforge
from kpiforge.hookspecs import hookimpl

__all__ = ["kpiforge_register_packs"]


@hookimpl
def kpiforge_register_packs(register: Any) -> None:
    register("kpiforge:standard", files=resources.files("kpiforge.definitions"),
             version=kpiforge.__version__, owner="kpiforge",
             doc="The bundled catalog: acquisition, awareness, conversion, retention and SEO KPIs.")
