"""Database sources: ``duckdb`` and ``sqlite`` files, and ``sql`` (any SQLAlchemy URL).

Each reads a ``table`` (quoted; ``schema.table`` allowed) or a ``query`` (trusted project-owner
SQL) and runs one aggregate ``GROUP BY`` per request in the database itself.

* ``duckdb``: opened read-only with the duckdb package.
* ``sqlite``: opened read-only with the standard library's sqlite3 and aggregated in SQLite's
  own SQL (``strftime`` for periods). DuckDB's sqlite extension would need a download, and
  SQLite is perfectly able to aggregate by itself.
* ``sql``: ``url: postgresql+psycopg://user:${PG_PASSWORD}@host:5432/db``. SQLAlchemy is
  imported only when such a source is used; the SQL is generated per dialect (PostgreSQL:
  ``AT TIME ZONE``, ``date_trunc``; SQLite URLs reuse the sqlite dialect). Values of ``${VAR}``
  never appear in error messages.

The time range is compared with the raw time column, before any conversion to local time (see
``kpiforge.sources``): an index on a ``timestamptz`` column serves it, and with a ``query`` it
applies to the query's result. A ``date`` or ``timestamp`` (without time zone) column is local
time already: it is bucketed as it is, and its range is two plain bounds; only ``timestamptz``
is converted. That needs the column's type: a ``table`` of ``duckdb`` and ``sql`` has it (for
SQLAlchemy, from the inspector); a ``sql`` ``query`` and SQLite do not, and read every value
the general way, which gives the same periods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from kpiforge.hookspecs import hookimpl

from ._spark_settings import SPARK_SETTINGS_SCHEMA

if TYPE_CHECKING:
    from kpiforge.hookspecs import SourceContext, SourceFactory, SourceTypeRegister
    from kpiforge.sources import SqlSource

    from ._database_sources import DuckDBSource, SqlAlchemySource, SqliteSource, sql_dialect

__all__ = ["DuckDBSource", "SqlAlchemySource", "SqliteSource", "kpiforge_register_source_types",
           "sql_dialect"]


def __getattr__(name: str) -> Any:
    # the implementation's names, imported on first use (see _database_sources)
    from . import _database_sources

    try:
        return getattr(_database_sources, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def _factory(kind: str, class_name: str) -> SourceFactory:
    def make(name: str, settings: Mapping[str, Any], context: SourceContext) -> SqlSource:
        from . import _database_sources

        cls = getattr(_database_sources, class_name)
        return cls(name, settings, context.project_dir)

    make.__name__ = f"{kind}_source"
    return make


_PROJECT = "https://kpiforge.dev/schemas/v1/project.schema.json#/$defs/"
_TABLE_OR_QUERY: dict[str, Any] = {
    "table": {"type": "string", "minLength": 1, "maxLength": 256,
              "description": "The table (or schema.table) to aggregate."},
    "query": {"$ref": _PROJECT + "sql",
              "description": "A SELECT (trusted project-owner SQL) to aggregate instead of a table."},
}
_ONE_OF_TABLE_QUERY = [{"required": ["table"]}, {"required": ["query"]}]
FILE_SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["path"],
    "properties": {"path": {"$ref": _PROJECT + "path",
                            "description": "The database file, relative to the project file."},
                   **_TABLE_OR_QUERY},
    "oneOf": _ONE_OF_TABLE_QUERY,
}
SQL_SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "properties": {"url": {"type": "string", "minLength": 1,
                           "description": "SQLAlchemy URL; write the password as ${VAR}."},
                   **_TABLE_OR_QUERY},
    "oneOf": _ONE_OF_TABLE_QUERY,
}


def _spark_source(name: str, settings: Mapping[str, Any], context: SourceContext) -> SqlSource:
    from ._spark import SparkSource

    return SparkSource(name, settings, context.project_dir)


@hookimpl
def kpiforge_register_source_types(register: SourceTypeRegister) -> None:
    register("duckdb", _factory("duckdb", "DuckDBSource"), settings_schema=FILE_SETTINGS_SCHEMA, secrets=(),
             doc="A DuckDB database file (table or query), opened read-only.")
    register("sqlite", _factory("sqlite", "SqliteSource"), settings_schema=FILE_SETTINGS_SCHEMA, secrets=(),
             doc="A SQLite database file (table or query), aggregated by SQLite itself.")
    register("spark", _spark_source, settings_schema=SPARK_SETTINGS_SCHEMA, secrets=(),
             doc="A table, files or a query of a SparkSession (local[*] or a cluster), "
                 "aggregated by Spark; needs kpiforge[spark].")
    register("sql", _factory("sql", "SqlAlchemySource"), settings_schema=SQL_SETTINGS_SCHEMA,
             secrets={"url": "url"},
             doc="Any SQLAlchemy URL (PostgreSQL, MySQL/MariaDB, BigQuery, Snowflake, ...); "
                 "needs kpiforge[sql] and the engine's driver.")
