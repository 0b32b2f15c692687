"""The database sources' implementation (``databases`` registers them and documents them).

Imported when a database source is made, not when the plugin registers its types: ``kpiforge
validate`` and ``--help`` need the registration only.
"""


from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from kpiforge.errors import SourceError
from kpiforge.sources import SourceRequest, require_setting

from ._dialects import Dialect, DuckDBDialect, Params, PostgresDialect
from ._duckdb import check_select, duckdb_session
from ._glot import GlotDialect
from ._sql import empty_select_sql
from ._sqlite import SqliteDialect
from ._sqlsource import SqlSource, dbapi_columns, table_or_query

__all__ = ["DuckDBSource", "SqlAlchemySource", "SqliteSource", "sql_dialect"]

SQL_EXTRA_HINT = "pip install 'kpiforge[sql]'"


def _database_file(name: str, settings: Mapping[str, Any], project_dir: Path) -> Path:
    raw = require_setting(name, settings, "path")
    if not isinstance(raw, str):
        raise SourceError(f"source '{name}': 'path' must be one file")
    return Path(project_dir) / raw


class _SqliteSpan(SqlSource):
    """SQLite has no time-zone data: the offset CASE needs the span of the queried times."""

    def _span(self, request: SourceRequest) -> tuple[datetime, datetime] | None:
        if request.start is not None and request.end is not None:  # the request has ranges
            return (datetime.combine(request.start, datetime.min.time()),
                    datetime.combine(request.end, datetime.min.time()))
        params = Params("colon")
        dialect = SqliteDialect()
        sql = dialect.render(dialect.span_query(self.relation(params), self.time))
        try:
            columns = self._query(sql, params.values, ())
        except SourceError:
            raise
        except Exception as exc:
            raise self._fail(exc, "query failed") from exc
        low, high = columns["lo"][0], columns["hi"][0]
        if low is None or high is None:
            return None
        return datetime.fromisoformat(low) - timedelta(days=1), datetime.fromisoformat(high) + timedelta(days=1)


def _located(table: Any, database: str) -> str:
    return f"table '{table}' of {database}" if table is not None else f"the query on {database}"


class _DatabaseFile(SqlSource):
    """A database in one file (path:), read through a table or a query."""

    def __init__(self, name: str, settings: Mapping[str, Any], project_dir: Path):
        super().__init__(name, settings)
        self.path = _database_file(name, settings, project_dir)
        self.database = str(settings["path"])
        self.from_item = table_or_query(name, settings)
        self.table_name = settings.get("table")

    @property
    def where(self) -> str:
        return _located(self.table_name, self.database)

    def relation(self, params: Params) -> str:
        return self.from_item

    def _exists(self) -> None:
        if not self.path.is_file():  # connecting would create an empty database
            raise SourceError(f"source '{self.name}': database file {self.path} does not exist",
                              field=("path",))


class DuckDBSource(_DatabaseFile):
    dialect = DuckDBDialect()
    kind = "duckdb"

    def __init__(self, name: str, settings: Mapping[str, Any], project_dir: Path):
        super().__init__(name, settings, project_dir)
        query = settings.get("query")
        if isinstance(query, str):
            check_select(name, query.strip().rstrip(";"))

    def _session(self, setup: Sequence[str]) -> Any:
        self._exists()
        return duckdb_session(str(self.path), read_only=True, setup=setup)


class _DbapiSession:
    """A sqlite3 connection as a source session."""

    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def query(self, sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return dbapi_columns(self.connection.execute(sql, dict(params)))

    def describe(self, relation: str, params: Mapping[str, Any]) -> dict[str, str]:
        # SQLite types values, not columns: names only (an empty type is "unknown")
        cursor = self.connection.execute(empty_select_sql(relation, SqliteDialect()), dict(params))
        return {d[0]: "" for d in cursor.description}

    def tables(self) -> list[str]:
        rows = self.connection.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name").fetchall()
        return [r[0] for r in rows]


class SqliteSource(_SqliteSpan, _DatabaseFile):
    dialect = SqliteDialect()
    kind = "sqlite"

    @contextmanager
    def _session(self, setup: Sequence[str]) -> Iterator[_DbapiSession]:
        self._exists()
        connection = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            for statement in setup:
                connection.execute(statement)
            yield _DbapiSession(connection)
        finally:
            connection.close()


_DIALECTS: dict[str, type[Dialect]] = {
    "postgresql": PostgresDialect,
    "sqlite": SqliteDialect,
    "duckdb": DuckDBDialect,
}
# SQLAlchemy backend name -> the kpiforge dialect sqlglot renders for it (_glot)
_GLOT_BACKENDS = {
    "mysql": "mysql", "mariadb": "mariadb", "bigquery": "bigquery", "snowflake": "snowflake",
    "redshift": "redshift", "trino": "trino", "awsathena": "athena", "databricks": "databricks",
    "hive": "spark", "clickhouse": "clickhouse", "mssql": "tsql", "oracle": "oracle",
}
# what to install when a backend's SQLAlchemy dialect or DBAPI driver is missing
_DRIVER_HINTS = {
    "mysql": "pip install 'kpiforge[mysql]'", "mariadb": "pip install 'kpiforge[mysql]'",
    "bigquery": "pip install sqlalchemy-bigquery", "snowflake": "pip install snowflake-sqlalchemy",
    "redshift": "pip install sqlalchemy-redshift redshift_connector",
    "trino": "pip install trino", "awsathena": "pip install pyathena",
    "databricks": "pip install databricks-sqlalchemy", "hive": "pip install 'pyhive[hive]'",
    "clickhouse": "pip install clickhouse-sqlalchemy", "mssql": "pip install pyodbc",
    "oracle": "pip install oracledb",
}


def sql_dialect(backend: str) -> Dialect | None:
    """The dialect of a SQLAlchemy backend name (``mysql``, ``postgresql``, ...); None: unknown."""
    if backend in _DIALECTS:
        return _DIALECTS[backend]()
    if backend in _GLOT_BACKENDS:
        return GlotDialect(_GLOT_BACKENDS[backend])
    return None


class SqlAlchemySource(_SqliteSpan, SqlSource):
    kind = "sql"

    def __init__(self, name: str, settings: Mapping[str, Any], project_dir: Path):
        super().__init__(name, settings)
        try:
            import sqlalchemy
        except ImportError as exc:
            raise SourceError(f"source '{name}': the sql source needs SQLAlchemy: "
                              f"{SQL_EXTRA_HINT}") from exc
        self._sa = sqlalchemy
        url = require_setting(name, settings, "url")
        try:
            self.url = sqlalchemy.engine.make_url(url)
        except Exception:  # never echo the URL: it holds the expanded password
            raise SourceError(f"source '{name}': 'url' is not a valid SQLAlchemy URL") from None
        backend = self.url.get_backend_name()
        dialect = sql_dialect(backend)
        if dialect is None:
            raise SourceError(f"source '{name}': the {backend} dialect is not supported "
                              f"(supported: {', '.join(sorted({*_DIALECTS, *_GLOT_BACKENDS}))})",
                              field=("url",))
        self.dialect = dialect
        self.hint = _DRIVER_HINTS.get(backend, SQL_EXTRA_HINT)
        self.secrets = [s for s in (self.url.password,) if s]
        self.from_item = table_or_query(name, settings)
        self.table_name = settings.get("table")
        self.database = f"the {backend} database {self.url.database or ''}".rstrip()

    @property
    def where(self) -> str:
        return _located(self.table_name, self.database)

    def _span(self, request: SourceRequest) -> tuple[datetime, datetime] | None:
        if not isinstance(self.dialect, SqliteDialect):
            return None
        return super()._span(request)

    def relation(self, params: Params) -> str:
        return self.from_item

    def _redact(self, message: str) -> str:
        for secret in self.secrets:
            message = message.replace(str(secret), "***")
        return message

    @contextmanager
    def _session(self, setup: Sequence[str]) -> Iterator["_SqlAlchemySession"]:
        sa = self._sa
        try:
            engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        except (ImportError, sa.exc.NoSuchModuleError) as exc:
            # the DBAPI driver (psycopg, pymysql, ...) or the SQLAlchemy dialect package
            # (sqlalchemy-bigquery, ...) is missing: either way, what to install
            missing = getattr(exc, "name", None) or exc
            raise SourceError(f"source '{self.name}': driver for {self.url.drivername} is not "
                              f"installed: {self.hint} ({missing})", field=("url",)) from exc
        try:
            with engine.connect() as connection:
                for statement in setup:
                    connection.execute(sa.text(statement))
                yield _SqlAlchemySession(sa, connection, self.table_name, self.dialect)
        finally:
            engine.dispose()


class _SqlAlchemySession:
    def __init__(self, sa: Any, connection: Any, table: str | None, dialect: Dialect):
        self.sa = sa
        self.connection = connection
        self.table = table
        self.dialect = dialect

    def query(self, sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
        result = self.connection.execute(self.sa.text(sql), dict(params))
        names = list(result.keys())
        rows = result.fetchall()
        columns: dict[str, list[Any]] = {n: [] for n in names}
        for name, values in zip(names, zip(*rows)) if rows else ():
            columns[name] = list(values)
        return columns

    def _schema_and_name(self) -> tuple[str | None, str]:
        assert self.table is not None
        schema, _, name = self.table.rpartition(".")
        return schema or None, name

    def describe(self, relation: str, params: Mapping[str, Any]) -> dict[str, str]:
        if self.table is not None:  # the inspector knows the declared types
            schema, name = self._schema_and_name()
            columns = self.sa.inspect(self.connection).get_columns(name, schema=schema)
            return {c["name"]: _type_name(c["type"]) for c in columns}
        # LIMIT is not SQL Server's or Oracle's: the other engines get the sqlglot rendering
        sql = empty_select_sql(relation, self.dialect)
        result = self.connection.execute(self.sa.text(sql), dict(params))
        return {name: "" for name in result.keys()}

    def tables(self) -> list[str]:
        schema, _ = self._schema_and_name()
        inspector = self.sa.inspect(self.connection)
        names = inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)
        return sorted(f"{schema}.{n}" if schema else n for n in names)


def _type_name(type_: Any) -> str:
    """A SQLAlchemy column type as text. ``str()`` writes ``TIMESTAMP`` for a PostgreSQL
    ``timestamptz`` too, and a column with a time zone must not pass for local wall time."""
    name = str(type_)
    if getattr(type_, "timezone", False) and "TIME ZONE" not in name.upper():
        return f"{name} WITH TIME ZONE"
    return name
