"""Built-in sinks that need nothing but the standard library and rich: ``console`` and ``file``."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from kpiforge.hookspecs import SinkTypeRegister, hookimpl
from kpiforge.sinks import SinkContext, SinkError, clean_text

if TYPE_CHECKING:
    from kpiforge.sinks import Alert

_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


class ConsoleSink:
    """Prints alerts with rich, on stderr by default so that stdout stays data (JSON, CSV)."""

    def __init__(self, name: str, settings: Mapping[str, Any]):
        from rich.console import Console

        stream = settings.get("stream", "stderr")
        if stream not in ("stdout", "stderr"):
            raise SinkError(f"stream must be 'stdout' or 'stderr', got {stream!r}", setting="stream")
        self.name = name
        self.console = Console(file=sys.stderr if stream == "stderr" else sys.stdout,
                               soft_wrap=True, highlight=False)

    def send(self, alert: Alert) -> None:
        from rich.text import Text

        style = "green" if alert.state == "resolved" else _STYLE.get(alert.severity, "")
        label = "RESOLVED" if alert.state == "resolved" else str(alert.severity).upper()
        # Alert text comes from KPI files and data: never markup, never escape sequences.
        self.console.print(Text.assemble((clean_text(label), style), " ",
                                         clean_text(f"{alert.kpi}: {alert.message}")))


class FileSink:
    """Appends one JSON object per alert (JSON Lines), flushed and fsynced before returning."""

    def __init__(self, name: str, settings: Mapping[str, Any], project_dir: Path | None = None):
        path = settings.get("path")
        if not isinstance(path, str) or not path:
            raise SinkError("missing 'path' (the JSON Lines file to append alerts to)", setting="path")
        resolved = Path(path).expanduser()
        if not resolved.is_absolute() and project_dir is not None:
            resolved = Path(project_dir) / resolved
        self.path = resolved
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        line = json.dumps({"id": alert.id, **alert.payload()}, ensure_ascii=False,
                          allow_nan=False, separators=(",", ":")) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror or exc}", retryable=True) from exc


def console_sink(name: str, settings: Mapping[str, Any], context: SinkContext) -> ConsoleSink:
    return ConsoleSink(name, settings)


def file_sink(name: str, settings: Mapping[str, Any], context: SinkContext) -> FileSink:
    return FileSink(name, settings, context.project_dir)


# Values are checked by the factories (their messages name the setting); the schemas name the
# settings, so that a misspelt one is an unknown field with a suggestion.
CONSOLE_SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"stream": {"description": "stderr (default) or stdout."}},
}
FILE_SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"path": {"description": "The JSON Lines file, relative to the project file."}},
}


@hookimpl
def kpiforge_register_sink_types(register: SinkTypeRegister) -> None:
    register("console", console_sink, settings_schema=CONSOLE_SETTINGS_SCHEMA, secrets=(),
             doc="Print alerts to the terminal (rich).")
    register("file", file_sink, settings_schema=FILE_SETTINGS_SCHEMA, secrets=(),
             doc="Append alerts to a JSON Lines file (path:), fsynced.")
