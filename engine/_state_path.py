"""Where a project keeps its state database (alert state, outbox) and, beside it, its history.

Apart from the alerts package so that storing a run's history, which needs only this path, does
not import alerting (templates, jinja2, delivery).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .errors import AlertConfigError

__all__ = ["DEFAULT_STATE_PATH", "resolve_state_path"]

DEFAULT_STATE_PATH = ".kpiforge/state.db"


def resolve_state_path(project_dir: str | Path, state: Any) -> str:
    """The state database path: ``state:`` (a path, or ``{path: ...}``) relative to the project."""
    if isinstance(state, Mapping):
        state = state.get("path")
    if state in (None, ""):
        state = DEFAULT_STATE_PATH
    if not isinstance(state, (str, Path)):
        raise AlertConfigError(f"state: expected a file path, got {state!r}", field="state")
    if str(state) == ":memory:":
        return ":memory:"
    path = Path(state).expanduser()
    if not path.is_absolute():
        path = Path(project_dir) / path
    return str(path)
