"""kpiforge: business KPIs defined once in YAML, validated, safely evaluated, computed, alerted.

The public API is what ``__all__`` lists; modules whose names start with ``_`` are private.
"""

from ._engine import Engine
from ._model import Definition, Direction, Objective, Result, Results, Status, Thresholds, Unit
from .errors import (
    ArgumentError,
    DefinitionError,
    Diagnostic,
    FormulaError,
    InputError,
    KpiforgeError,
    PluginError,
    PluginWarning,
    ProjectError,
    SinkError,
    SourceError,
    StateError,
    UnknownKpiError,
)
from .hookspecs import hookimpl

__all__ = [
    "ArgumentError",
    "Definition",
    "DefinitionError",
    "Diagnostic",
    "Direction",
    "Engine",
    "FormulaError",
    "InputError",
    "KpiforgeError",
    "Objective",
    "PluginError",
    "PluginWarning",
    "ProjectError",
    "Result",
    "Results",
    "SinkError",
    "SourceError",
    "StateError",
    "Status",
    "Thresholds",
    "Unit",
    "UnknownKpiError",
    "hookimpl",
]
__version__ = "0.1.0"
