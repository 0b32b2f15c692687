"""Every error kpiforge raises on purpose derives from :class:`KpiforgeError`.

Subclasses differ in meaning, not in wording: a :class:`DefinitionError` means a YAML file is
wrong and carries every :class:`Diagnostic` found (one bad file never hides the others); a
:class:`SourceError` means data could not be read; a :class:`SinkError` means an alert could
not be delivered. Third-party exceptions are translated at the boundary with ``raise ... from``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable

__all__ = [
    "ArgumentError",
    "Diagnostic",
    "did_you_mean",
    "DefinitionError",
    "FormulaError",
    "InputError",
    "KpiforgeError",
    "PluginError",
    "ProjectError",
    "SinkError",
    "SourceError",
    "UnknownKpiError",
]


@dataclass(frozen=True, order=True, slots=True)
class Diagnostic:
    """One finding in a file, positioned like a compiler message.

    Ordering is by path, then line, then column, so a sorted list reads top to bottom.
    ``line`` and ``column`` are 1-based; 0 means "the whole file".
    """

    path: str
    line: int
    column: int
    code: str
    message: str
    severity: str = "error"
    field: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {self.severity}[{self.code}]: {what}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "field": self.field,
            "message": self.message,
        }


def did_you_mean(word: Any, choices: Iterable[Any]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string. One rule everywhere."""
    if not isinstance(word, str):
        return ""
    names = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if not close:  # case slips ("Sum") score low with difflib but are the commonest typo
        close = [c for c in names if c.lower() == word.lower()][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


class KpiforgeError(Exception):
    """Base class of every error kpiforge raises on purpose."""


class DefinitionError(KpiforgeError):
    """One or more definition files are invalid; ``diagnostics`` lists every finding, sorted."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics: tuple[Diagnostic, ...] = tuple(sorted(diagnostics))
        super().__init__("\n".join(str(d) for d in self.diagnostics) or "invalid definitions")

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)


class ProjectError(DefinitionError):
    """The project file (``kpiforge.yaml``) is invalid."""


class FormulaError(KpiforgeError):
    """A formula was rejected: syntax error, forbidden construct, unknown function.

    ``column`` is the 1-based column inside the formula text (0 when unknown); the loader adds
    the file position of the formula to it.
    """

    def __init__(self, message: str, *, column: int = 0, code: str = "formula"):
        self.message = message
        self.column = column
        self.code = code
        super().__init__(message if not column else f"column {column}: {message}")


class InputError(KpiforgeError, ValueError):
    """Inputs passed to ``Engine.evaluate`` cannot be used (arrays of unequal length, text, ...)."""


class ArgumentError(KpiforgeError, ValueError):
    """A formula function cannot compute with one of its arguments (``round(x, 1e9)``).

    Raised by functions, never escapes an evaluation: the value is null and this message is its
    reason, e.g. ``round(): digits must be a whole number from -15 to 15, not 1e+09``.
    """


class UnknownKpiError(KpiforgeError, KeyError):
    """A KPI id was asked for that no loaded definition has."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown KPI"


class PluginError(KpiforgeError):
    """A plugin failed to import or to register, or registered a name another plugin owns."""


class SourceError(KpiforgeError):
    """A data source could not be read or queried."""


class SinkError(KpiforgeError):
    """An alert could not be delivered by a sink.

    ``retryable`` tells the outbox whether another attempt may succeed (timeouts, connection
    errors, 5xx, 429) or not (other 4xx, bad configuration); ``retry_after`` is the delay in
    seconds a server asked for, if any.
    """

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None):
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(message)
