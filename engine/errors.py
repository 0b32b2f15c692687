"""Every error kpiforge raises on purpose derives from :class:`KpiforgeError`.

Subclasses differ in meaning, not in wording: a :class:`DefinitionError` means a YAML file is
wrong and carries every :class:`Diagnostic` found (one bad file never hides the others); a
:class:`SourceError` means data could not be read; a :class:`SinkError` means an alert could
not be delivered. Third-party exceptions are translated at the boundary with ``raise ... from``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

__all__ = [
    "AlertConfigError",
    "AnnotationError",
    "ArgumentError",
    "CaseError",
    "ColumnsError",
    "DefinitionError",
    "Diagnostic",
    "FileRefused",
    "FileTooLarge",
    "FormulaError",
    "InputError",
    "KpiforgeError",
    "MAX_DIAGNOSTICS_PER_FILE",
    "MissingExtraError",
    "PeriodError",
    "PluginError",
    "PluginWarning",
    "ProjectError",
    "RunError",
    "SinkError",
    "SourceError",
    "StateError",
    "TemplateLimitError",
    "UnknownKpiError",
    "UnsetVariable",
    "did_you_mean",
    "limit_per_file",
    "shorten",
]

# Past this, more lines of one file help nobody: the first ones show what is wrong.
MAX_DIAGNOSTICS_PER_FILE = 50
MAX_ECHO = 80  # characters of source text (a formula, a value) quoted in a message
_MORE = "more"  # code of the "N more diagnostics in this file not shown" note


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
        if self.severity == "note" and not self.line:
            return f"{self.path}: note: {self.message}"
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
    # A ratio >= 0.6 needs similar lengths; filtering on that first is what keeps a hint cheap
    # against thousands of choices (difflib would build a matcher for each).
    size = len(word)
    names = [c for c in choices if isinstance(c, str) and 2 * min(size, len(c)) >= 0.6 * (size + len(c))]
    import difflib  # here: only a mistake needs it, and every command imports this module

    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if not close:  # case slips ("Sum") score low with difflib but are the commonest typo
        close = [c for c in names if c.lower() == word.lower()][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


def shorten(text: str, limit: int = MAX_ECHO) -> str:
    """Source text cut to ``limit`` characters with an ellipsis, for quoting in a message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _order(d: Diagnostic) -> tuple[Any, ...]:
    # notes close their file's block: they summarise what was left out of it
    return (d.path, d.severity == "note", d)


def limit_per_file(diagnostics: Iterable[Diagnostic],
                   limit: int = MAX_DIAGNOSTICS_PER_FILE) -> tuple[Diagnostic, ...]:
    """Sorted, at most ``limit`` per file (errors before warnings when some must go), each cut
    file closed by a note saying how many more it has. Notes themselves are always kept.

    Idempotent, so diagnostics can be re-wrapped (a ``ProjectError`` from a ``DefinitionError``)
    without notes multiplying.
    """
    by_path: dict[str, list[Diagnostic]] = {}
    hidden: Counter[str] = Counter()
    notes: list[Diagnostic] = []
    for d in diagnostics:
        if d.code == _MORE:  # an earlier cut's note: its count joins this cut's
            hidden[d.path] += int(d.message.split(" ", 1)[0].replace(",", ""))
        elif d.severity == "note":
            notes.append(d)
        else:
            by_path.setdefault(d.path, []).append(d)
    kept = list(notes)
    for path, items in by_path.items():
        if len(items) > limit:
            hidden[path] += len(items) - limit
            items = sorted(items, key=lambda d: (not d.is_error, d))[:limit]
        kept.extend(items)
    for path, count in hidden.items():
        noun = "diagnostic" if count == 1 else "diagnostics"
        kept.append(Diagnostic(path, 0, 0, _MORE, f"{count:,} more {noun} in this file not shown",
                               "note"))
    return tuple(sorted(kept, key=_order))


class KpiforgeError(Exception):
    """Base class of every error kpiforge raises on purpose."""


class DefinitionError(KpiforgeError):
    """One or more definition files are invalid; ``diagnostics`` lists the findings, sorted by
    file, at most :data:`MAX_DIAGNOSTICS_PER_FILE` per file and then a note saying how many
    more that file has."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics: tuple[Diagnostic, ...] = limit_per_file(diagnostics)
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


class AnnotationError(KpiforgeError, ValueError):
    """An annotation cannot be stored as asked: its ``field`` (``"period"``, ``"grain"``,
    ``"kpi"``, ``"slice"``, ``"text"``, ``"author"`` or ``"id"``) says which argument, so that the
    command line can name its option."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class UnknownKpiError(KpiforgeError, KeyError):
    """A KPI id was asked for that no loaded definition has."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown KPI"


class PluginError(KpiforgeError):
    """A plugin failed to import or to register, or registered a name another plugin owns."""


class PluginWarning(UserWarning):
    """Issued once per plugin that failed to load or register (also in ``plugins.failures``);
    the other plugins keep working."""


class SourceError(KpiforgeError):
    """A data source could not be read or queried.

    ``field`` is the setting of the source the error is about (``("inputs", "cost", "column")``),
    so that the run can point at the line of ``kpiforge.yaml`` that declared it; ``debug`` holds
    what only ``--debug`` shows: the generated SQL and the engine's original message.
    """

    def __init__(self, message: str, *, field: tuple[str, ...] = (), debug: str | None = None):
        self.field = tuple(field)
        self.debug = debug
        super().__init__(message)


class SinkError(KpiforgeError):
    """An alert could not be delivered by a sink.

    ``retryable`` tells the outbox whether another attempt may succeed (timeouts, connection
    errors, 5xx, 429) or not (other 4xx, bad configuration); ``retry_after`` is the delay in
    seconds a server asked for, if any. ``setting`` names the sink setting a factory refused
    (``"url"``), so a project-load diagnostic can point at its line.
    """

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None,
                 setting: str | None = None):
        self.retryable = retryable
        self.retry_after = retry_after
        self.setting = setting
        super().__init__(message)


class StateError(KpiforgeError):
    """The alert state database cannot be used: damaged, not kpiforge's, or locked too long."""


class ColumnsError(SourceError):
    """Every column problem of one source at once; ``problems`` pairs a setting with its text."""

    def __init__(self, problems: Sequence[tuple[tuple[str, ...], str]], *, debug: str | None = None):
        self.problems = tuple(problems)
        super().__init__("\n".join(text for _, text in self.problems), field=self.problems[0][0],
                         debug=debug)


class RunError(KpiforgeError, ValueError):
    """A run was asked something inconsistent (two period selections, an unknown dimension)."""


class PeriodError(KpiforgeError, ValueError):
    """A period, date, grain or time zone string that cannot be understood."""


class AlertConfigError(KpiforgeError, ValueError):
    """An alert setting cannot be used (``alerting``, ``state``, a KPI's ``alerts:``, a retry
    policy). ``field`` is the dotted setting (``"alerting.repeat_interval"``); ``path``,
    ``line`` and ``column`` say where it was written once that is known (0: not known), and
    the message then starts with that position."""

    def __init__(self, message: str, *, field: str = "", path: str = "", line: int = 0,
                 column: int = 0):
        self.message = message
        self.field = field
        self.path = path
        self.line = line
        self.column = column
        where = f"{path}:{line}:{column}: " if path and line else f"{path}: " if path else ""
        super().__init__(where + message)

    def at(self, path: str, line: int, column: int = 0) -> "AlertConfigError":
        """The same error, positioned."""
        return AlertConfigError(self.message, field=self.field, path=path, line=line, column=column)


class TemplateLimitError(KpiforgeError):
    """An alert message template went past a time, size or loop limit."""


class CaseError(KpiforgeError):
    """An alert test case cannot run; ``path`` (relative to the case) says where to point."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()):
        self.path = tuple(path)
        super().__init__(message)


class FileRefused(KpiforgeError):
    """A file that cannot or must not be read; ``code`` and ``reason`` make the diagnostic."""

    def __init__(self, code: str, reason: str):
        self.code = code
        self.reason = reason
        super().__init__(reason)


class FileTooLarge(FileRefused):
    """More than ``limit`` bytes; ``size`` is the file's size as far as it is known."""

    def __init__(self, size: int, limit: int):
        self.size = size
        self.limit = limit
        super().__init__("file-too-large", f"file is {size:,} bytes; the limit is {limit:,} bytes")


class MissingExtraError(KpiforgeError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


class UnsetVariable(KpiforgeError):
    """A ``${NAME}`` whose variable is not set; ``path`` is where it was written (keys and
    list indexes)."""

    def __init__(self, name: str, path: tuple[str | int, ...]):
        self.name = name
        self.path = path
        super().__init__(f"environment variable {name} is not set")
