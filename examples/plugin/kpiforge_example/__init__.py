"""An example kpiforge plugin: one source type, one sink type, one formula function.

Only public kpiforge API is used. kpiforge loads this module through the ``kpiforge`` entry
point declared in ``pyproject.toml`` and calls the ``kpiforge_register_*`` hooks below.
"""

from __future__ import annotations

from kpiforge.hookspecs import (
    FunctionRegister,
    SinkTypeRegister,
    SourceTypeRegister,
    hookimpl,
)

from .functions import pct
from .sink import SETTINGS_SCHEMA as SINK_SETTINGS, TextFileSink
from .source import SETTINGS_SCHEMA as SOURCE_SETTINGS, JsonLinesHttpSource

__all__ = [
    "kpiforge_register_functions",
    "kpiforge_register_sink_types",
    "kpiforge_register_source_types",
]


@hookimpl
def kpiforge_register_source_types(register: SourceTypeRegister) -> None:
    register("jsonl_http", JsonLinesHttpSource, settings_schema=SOURCE_SETTINGS,
             secrets=("token",), doc="Rows as JSON Lines from an HTTP endpoint (bearer token).")


@hookimpl
def kpiforge_register_sink_types(register: SinkTypeRegister) -> None:
    register("textfile", TextFileSink, settings_schema=SINK_SETTINGS, secrets=(),
             doc="Appends one line per notification to a text file.")


@hookimpl
def kpiforge_register_functions(register: FunctionRegister) -> None:
    register("pct", pct, min_args=2, max_args=2, doc="100 * part / whole.")
