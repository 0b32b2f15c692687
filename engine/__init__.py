"""kpiforge: business KPIs defined once in YAML, validated, safely evaluated, computed, alerted.

The public API is what ``__all__`` lists; modules whose names start with ``_`` are private.
"""

from ._dispatch import DispatchSummary
from ._engine import Engine
from ._model import (
    AlertState,
    Definition,
    Direction,
    Objective,
    Result,
    Results,
    Status,
    Thresholds,
    Unit,
)
from ._project import Project
from ._reasons import REASON_CODES, Reason
from ._records import Record, RunResult
from .errors import (
    AlertConfigError,
    ArgumentError,
    DefinitionError,
    Diagnostic,
    FormulaError,
    InputError,
    KpiforgeError,
    MissingExtraError,
    PeriodError,
    PluginError,
    PluginWarning,
    ProjectError,
    RunError,
    SinkError,
    SourceError,
    StateError,
    UnknownKpiError,
)
from .hookspecs import hookimpl

__all__ = [
    "AlertConfigError",
    "AlertState",
    "ArgumentError",
    "Definition",
    "DefinitionError",
    "Diagnostic",
    "Direction",
    "DispatchSummary",
    "Engine",
    "FormulaError",
    "InputError",
    "KpiforgeError",
    "MissingExtraError",
    "Objective",
    "PeriodError",
    "PluginError",
    "PluginWarning",
    "Project",
    "ProjectError",
    "REASON_CODES",
    "Reason",
    "Record",
    "Result",
    "Results",
    "RunError",
    "RunResult",
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
