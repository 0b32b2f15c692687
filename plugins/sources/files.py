"""File sources: ``csv``, ``parquet`` and ``json``, read and aggregated by DuckDB.

``path`` is relative to the project file and may be a glob (``data/ads_*.csv``) or a list of
them; files of one source are read together (``union_by_name``), so columns may come in any
order. ``options`` go to DuckDB's reader as named arguments (``delim: ";"``, ``header: true``).
The file list and every option value are bound parameters; option names are checked
identifiers. DuckDB reads only the columns the query uses and aggregates in one ``GROUP BY``.

The ``time`` column's type is what DuckDB reads (a Parquet type, or what it sniffs in a CSV or
JSON file): a DATE or TIMESTAMP is local time already, bucketed and filtered as it is (the
Parquet reader skips row groups on the plain bounds); a TIMESTAMPTZ (or text with an offset)
is converted to the project's time zone, once per row kept.

``query`` (optional) shapes the files first: a DuckDB ``SELECT`` in which the file(s) of
``path`` are the view ``source``::

    query: >-
      SELECT CAST(date_trunc('month', date) AS DATE) AS month, count(*) AS orders
      FROM source GROUP BY 1

``time``, ``dimensions`` and the inputs then name columns of the query's result, and the
time range and the periods apply to that result: the query always sees every row of the files,
so it may compare months, rank rows or use window functions over the whole history. The query
may have its own ``WITH``. Like ``expression:``, it is trusted project-owner SQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from kpiforge.hookspecs import hookimpl

if TYPE_CHECKING:
    from kpiforge.hookspecs import SourceContext, SourceFactory, SourceTypeRegister

    from ._file_source import FileSource

__all__ = ["FileSource", "kpiforge_register_source_types"]


def __getattr__(name: str) -> Any:
    # the implementation's names, imported on first use (see _file_source)
    from . import _file_source

    try:
        return getattr(_file_source, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def _factory(fmt: str) -> SourceFactory:
    def make(name: str, settings: Mapping[str, Any], context: SourceContext) -> FileSource:
        from ._file_source import FileSource

        return FileSource(name, settings, context.project_dir, fmt)

    make.__name__ = f"{fmt}_source"
    return make


_PROJECT = "https://kpiforge.dev/schemas/v1/project.schema.json#/$defs/"
SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["path"],
    "properties": {
        "path": {
            "description": "File, folder or glob, relative to the project file, or a list of them.",
            "oneOf": [
                {"$ref": _PROJECT + "path"},
                {"type": "array", "minItems": 1, "items": {"$ref": _PROJECT + "path"}},
            ],
        },
        "query": {"$ref": _PROJECT + "sql",
                  "description": "A SELECT over the file(s) of path, which it calls 'source' "
                                 "(trusted project-owner SQL); time, dimensions and inputs name "
                                 "its result's columns."},
        "options": {
            "type": "object",
            "description": "Reader options passed to DuckDB, e.g. delim.",
            "propertyNames": {"pattern": "^[a-z_][a-z0-9_]*$"},
            "additionalProperties": {"$ref": _PROJECT + "scalar"},
        },
    },
}


@hookimpl
def kpiforge_register_source_types(register: SourceTypeRegister) -> None:
    register("csv", _factory("csv"), settings_schema=SETTINGS_SCHEMA, secrets=(),
             doc="CSV files (globs allowed), read and aggregated by DuckDB's read_csv_auto; "
                 "a 'query' sees them as the view 'source'.")
    register("parquet", _factory("parquet"), settings_schema=SETTINGS_SCHEMA, secrets=(),
             doc="Parquet files (globs allowed), read and aggregated by DuckDB's read_parquet; "
                 "a 'query' sees them as the view 'source'.")
    register("json", _factory("json"), settings_schema=SETTINGS_SCHEMA, secrets=(),
             doc="JSON / NDJSON files (globs allowed), read and aggregated by DuckDB's "
                 "read_json_auto; a 'query' sees them as the view 'source'.")
