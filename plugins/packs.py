"""The bundled catalog as the pack ``kpiforge:standard``, registered like any other pack.

Its version is kpiforge's own: the catalog changes only with a kpiforge release.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import kpiforge
from kpiforge.hookspecs import hookimpl

__all__ = ["kpiforge_register_packs"]


def _definitions() -> Any:
    """The catalog's folder: the package's own when it lies on disk (what importlib.resources
    would give; importing it, with tempfile, would cost every command), else importlib's."""
    package = importlib.import_module("kpiforge.definitions")  # data: not in the type check
    locations = list(getattr(package, "__path__", ()))
    if len(locations) == 1 and os.path.isdir(locations[0]):
        return Path(locations[0])
    from importlib import resources

    return resources.files("kpiforge.definitions")


@hookimpl
def kpiforge_register_packs(register: Any) -> None:
    register("kpiforge:standard", files=_definitions(),
             version=kpiforge.__version__, owner="kpiforge",
             doc="The bundled catalog: acquisition, awareness, conversion, retention and SEO KPIs.")
