"""kpiforge: business KPIs defined once in YAML, validated, safely evaluated, computed, alerted.

The public API is what ``__all__`` lists; modules whose names start with ``_`` are private.
Names are imported on first use (PEP 562 ``__getattr__``): ``import kpiforge``, and the command
line's ``--help``, must not pay for numpy, jsonschema and the engine before anything needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ resolves these
    from ._ab import AbComparison, AbResult
    from ._annotations_store import Annotation
    from ._dispatch import DispatchSummary
    from ._engine import Engine
    from ._history import History, HistoryRecord
    from ._model import (
        AlertState,
        Definition,
        Direction,
        FieldSpec,
        InputSpec,
        Objective,
        ObjectiveTarget,
        Parameter,
        Status,
        Thresholds,
        Unit,
    )
    from ._objectives_progress import ObjectiveProgress, ObjectiveStatus
    from ._project import Project
    from ._reasons import REASON_CODES, Reason
    from ._records import Record, RunResult
    from ._results import Result, Results, SliceCodes
    from ._thresholds import ThresholdSource
    from .errors import (
        AlertConfigError,
        AnnotationError,
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
    "AbComparison",
    "AbResult",
    "AlertConfigError",
    "AlertState",
    "Annotation",
    "AnnotationError",
    "ArgumentError",
    "Definition",
    "DefinitionError",
    "Diagnostic",
    "Direction",
    "DispatchSummary",
    "Engine",
    "FieldSpec",
    "FormulaError",
    "History",
    "HistoryRecord",
    "InputError",
    "InputSpec",
    "KpiforgeError",
    "MissingExtraError",
    "Objective",
    "ObjectiveProgress",
    "ObjectiveStatus",
    "ObjectiveTarget",
    "Parameter",
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
    "SliceCodes",
    "SourceError",
    "StateError",
    "Status",
    "ThresholdSource",
    "Thresholds",
    "Unit",
    "UnknownKpiError",
    "hookimpl",
]
__version__ = "0.1.0"

# public name -> the module (relative to this package) that defines it
_EXPORTS: dict[str, str] = {
    "AbComparison": "_ab",
    "AbResult": "_ab",
    "AlertConfigError": "errors",
    "AlertState": "_model",
    "Annotation": "_annotations_store",
    "AnnotationError": "errors",
    "ArgumentError": "errors",
    "Definition": "_model",
    "DefinitionError": "errors",
    "Diagnostic": "errors",
    "Direction": "_model",
    "DispatchSummary": "_dispatch",
    "Engine": "_engine",
    "FieldSpec": "_model",
    "FormulaError": "errors",
    "History": "_history",
    "HistoryRecord": "_history",
    "InputError": "errors",
    "InputSpec": "_model",
    "KpiforgeError": "errors",
    "MissingExtraError": "errors",
    "Objective": "_model",
    "ObjectiveProgress": "_objectives_progress",
    "ObjectiveStatus": "_objectives_progress",
    "ObjectiveTarget": "_model",
    "Parameter": "_model",
    "PeriodError": "errors",
    "PluginError": "errors",
    "PluginWarning": "errors",
    "Project": "_project",
    "ProjectError": "errors",
    "REASON_CODES": "_reasons",
    "Reason": "_reasons",
    "Record": "_records",
    "Result": "_results",
    "Results": "_results",
    "RunError": "errors",
    "RunResult": "_records",
    "SinkError": "errors",
    "SliceCodes": "_results",
    "SourceError": "errors",
    "StateError": "errors",
    "Status": "_model",
    "ThresholdSource": "_thresholds",
    "Thresholds": "_model",
    "Unit": "_model",
    "UnknownKpiError": "errors",
    "hookimpl": "hookspecs",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module.lstrip('.')}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
