"""The ``textfile`` sink: one line per notification, appended to a file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kpiforge.hookspecs import SinkContext
from kpiforge.sinks import Alert, SinkError

SETTINGS_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "minLength": 1,
                 "description": "The file to append to, relative to kpiforge.yaml."},
    },
    "required": ["path"],
}


class TextFileSink:
    """Appends ``kind kpi period slice value: message`` lines (UTF-8)."""

    def __init__(self, name: str, settings: Mapping[str, Any], context: SinkContext):
        # construct only: kpiforge also calls the factory to check settings when it loads
        self.name = name
        self.path = context.project_dir / Path(settings["path"])

    def send(self, alert: Alert) -> None:
        line = " ".join((alert.kind, alert.kpi, alert.period or "-", alert.slice_text or "all",
                         alert.value_text)) + f": {alert.message}\n"
        try:
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line)
        except OSError as exc:
            # a file that cannot be written will not become writable by retrying
            raise SinkError(f"cannot append to {self.path}: {exc.strerror}",
                            retryable=False) from exc
