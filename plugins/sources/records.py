"""In-memory sources for embedding: ``dataframe`` and ``records``.

Pass the table to :meth:`kpiforge.Engine.run` with ``data={"events": table}`` (or under the
source's ``data`` key in a dict project). Accepted: a pandas or polars DataFrame, a pyarrow
Table or RecordBatch, or a list of dicts (``records``, which may also be written inline in the
project file). DuckDB scans the object in place through a registered view and aggregates it
with the same single ``GROUP BY`` as the file sources; nothing is copied row by row in Python
except a list of dicts, which has to become a table first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from kpiforge.hookspecs import hookimpl

if TYPE_CHECKING:
    from kpiforge.hookspecs import SourceContext, SourceFactory, SourceTypeRegister

    from ._records_source import RecordsSource, to_table

__all__ = ["RecordsSource", "kpiforge_register_source_types", "to_table"]


def __getattr__(name: str) -> Any:
    # the implementation's names, imported on first use (see _records_source)
    from . import _records_source

    try:
        return getattr(_records_source, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def _factory(kind: str) -> SourceFactory:
    def make(name: str, settings: Mapping[str, Any], context: SourceContext) -> RecordsSource:
        from ._records_source import RecordsSource

        return RecordsSource(name, settings, context.project_dir, kind)

    make.__name__ = f"{kind}_source"
    return make


# nothing but the table, which the core hands over as ``data`` (the "data" capability)
SETTINGS_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


@hookimpl
def kpiforge_register_source_types(register: SourceTypeRegister) -> None:
    register("dataframe", _factory("dataframe"), settings_schema=SETTINGS_SCHEMA, secrets=(),
             capabilities=("data",),
             doc="An in-memory pandas/polars DataFrame or pyarrow Table passed to Project.run(data=...).")
    register("records", _factory("records"), settings_schema=SETTINGS_SCHEMA, secrets=(),
             capabilities=("data",),
             doc="A list of dicts passed to Project.run(data=...) or written under 'data:'.")
