"""Alert messages rendered ahead of the write transaction that records them.

:func:`kpiforge.alerts.dispatch` first evaluates the rules against a read-only view of the
state (:class:`ReadThrough`), rendering every message it will need into :class:`Messages`;
then it evaluates again inside ``BEGIN IMMEDIATE`` with ``strict`` set, taking the rendered
messages by their template and context. A message not rendered yet (another run changed the
state in between) is noted in ``missing`` instead of being rendered under the write lock.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ._state import Store
from ._templates import render_message

__all__ = ["Messages", "ReadThrough"]


class Messages:
    def __init__(self) -> None:
        self.strict = False
        self.missing: dict[str, tuple[str | None, dict[str, Any], bool]] = {}
        self._rendered: dict[str, str] = {}

    def render(self, source: str | None, context: Mapping[str, Any], *, resolved: bool) -> str:
        key = json.dumps([source, dict(context), resolved], sort_keys=True, default=str)
        if key in self._rendered:
            return self._rendered[key]
        if self.strict:
            self.missing[key] = (source, dict(context), resolved)
            return ""
        text = self._rendered[key] = render_message(source, context, resolved=resolved)
        return text

    def render_missing(self) -> None:
        for key, (source, context, resolved) in self.missing.items():
            self._rendered[key] = render_message(source, context, resolved=resolved)
        self.missing.clear()


class ReadThrough:
    """The alert rows of a :class:`Store`, read live; writes stay in memory."""

    def __init__(self, store: Store):
        self._store = store
        self._rows: dict[str, dict[str, Any]] = {}

    def get_alert(self, fp: str) -> dict[str, Any] | None:
        row = self._rows.get(fp)
        return dict(row) if row is not None else self._store.get_alert(fp)

    def put_alert(self, row: Mapping[str, Any]) -> None:
        self._rows[row["fingerprint"]] = dict(row)
