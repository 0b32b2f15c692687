"""Where a field of a loaded definition is written: its file, line and column.

A :class:`Definition` keeps only the line of its id, which is enough for a message but not
for an annotation on the changed or missing field; the file is read again (once per file)
and the field's position taken from it, falling back to the KPI itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .errors import DefinitionError

__all__ = ["FieldLocator"]


class FieldLocator:
    """``locator(definition, ("inputs", "clicks", "unit"))`` -> (shown path, line, column).
    ``display`` maps a definition's path to the one messages show (a git side's temporary
    files to the repository's)."""

    def __init__(self, display: Callable[[str], str] = str):
        self.display = display
        self.documents: dict[str, Any] = {}

    def __call__(self, definition: Any, field: tuple[str, ...]) -> tuple[str, int, int]:
        from ._yamlio import load_document

        shown = self.display(definition.path)
        if definition.path not in self.documents:
            try:
                self.documents[definition.path] = load_document(Path(definition.path))
            except (DefinitionError, OSError):  # bundled files are shown as definitions/...
                self.documents[definition.path] = _bundled(definition.path)
        doc = self.documents[definition.path]
        if doc is None:
            return shown, definition.line, 1
        where: tuple[str | int, ...] = ()
        items = doc.data.get("kpis") if isinstance(doc.data, dict) else None
        if isinstance(items, list):
            index = next((i for i, item in enumerate(items)
                          if isinstance(item, dict) and item.get("id") == definition.id), None)
            if index is None:
                return shown, definition.line, 1
            where = ("kpis", index)
        line, column = doc.position(where + field)
        return shown, line, column


def _bundled(path: str) -> Any:
    from ._defpaths import bundled_definitions_dir
    from ._yamlio import load_document

    if not path.startswith("definitions/"):
        return None
    try:
        return load_document(bundled_definitions_dir() / path.removeprefix("definitions/"))
    except (DefinitionError, OSError):
        return None
