"""Every DuckDB connection kpiforge opens, and what a source's SQL may do on it.

A project's ``query:`` and ``expression:`` are SQL written by the project owner, but a project
file travels (CI jobs, shared repositories): running it must not fetch or load code. So the one
function that opens connections turns off DuckDB's automatic extension install and load, runs
the set-up (time zone, registered tables) and then locks the configuration, so that no ``SET``
later in the session can turn them back on. A ``query:`` must be exactly one ``SELECT``: an
``INSTALL``, ``LOAD``, ``SET`` or ``ATTACH`` is refused before anything runs.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

from kpiforge.errors import SourceError

from ._checks import first_line
from ._dialects import quote_identifier

__all__ = ["DuckDBSession", "check_select", "duckdb_session"]

# Settings fixed on every connection: extensions are used only if kpiforge itself loads them.
LOCKED_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


class DuckDBSession:
    """One open connection: runs the aggregate query and describes relations."""

    def __init__(self, connection: Any):
        self.connection = connection

    def query(self, sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.connection.execute(sql, dict(params)).fetchnumpy()

    def describe(self, relation: str, params: Mapping[str, Any]) -> dict[str, str]:
        """Column name -> DuckDB type of ``relation``, without reading its rows (a CSV is sniffed)."""
        rows = self.connection.execute(f"DESCRIBE SELECT * FROM {relation} AS __src", dict(params)).fetchall()
        return {str(row[0]): str(row[1]) for row in rows}

    def text_example(self, relation: str, params: Mapping[str, Any], column: str) -> str | None:
        """One value of a text ``column`` that is not a number (for the error message only)."""
        c = quote_identifier(column)
        row = self.connection.execute(
            f"SELECT {c} FROM {relation} AS __src WHERE {c} IS NOT NULL AND "
            f"TRY_CAST({c} AS DOUBLE) IS NULL LIMIT 1", dict(params)).fetchone()
        return None if row is None else str(row[0])

    def tables(self) -> list[str]:
        rows = self.connection.execute(
            "SELECT table_name FROM information_schema.tables ORDER BY table_name").fetchall()
        return [str(r[0]) for r in rows]


@contextmanager
def duckdb_session(database: str | None = None, *, read_only: bool = False,
                   setup: Sequence[str] = (), register: Mapping[str, Any] | None = None
                   ) -> Iterator[DuckDBSession]:
    """A locked-down DuckDB connection (see the module docstring), closed on exit."""
    import duckdb

    connection = duckdb.connect(database if database is not None else ":memory:",
                                read_only=read_only, config=dict(LOCKED_CONFIG))
    try:
        # a long query would draw DuckDB's progress bar on stdout, the data channel of
        # `kpiforge run --format json` and of programs embedding kpiforge (a connection-local
        # option, so it cannot go in the connect-time config)
        connection.execute("SET enable_progress_bar = false")
        for name, table in (register or {}).items():
            connection.register(name, table)
        for statement in setup:
            connection.execute(statement)
        connection.execute("SET lock_configuration = true")
        yield DuckDBSession(connection)
    finally:
        connection.close()


def check_select(name: str, query: str) -> None:
    """Raise a SourceError unless ``query`` is exactly one SELECT statement."""
    import duckdb

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise SourceError(f"source '{name}': query: {first_line(exc)}", field=("query",),
                          debug=f"{type(exc).__name__}: {exc}") from exc
    kinds = [str(s.type).rsplit(".", 1)[-1] for s in statements]
    if kinds != ["SELECT"]:
        first = next((s.query.strip().split()[0].upper() for s in statements
                      if str(s.type).rsplit(".", 1)[-1] != "SELECT" and s.query.strip()), "")
        found = f"{len(statements)} statements" if len(statements) != 1 else f"a {first} statement"
        raise SourceError(f"source '{name}': query: must be one SELECT statement, found {found}; "
                          "a query cannot install or load extensions, change settings or attach "
                          "databases", field=("query",))
