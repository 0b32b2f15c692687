"""The file sources' implementation (``files`` registers them and documents them).

Imported when a file source is made, not when the plugin registers its types: ``kpiforge
validate`` and ``--help`` need the registration only.
"""


from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from kpiforge.errors import SourceError
from kpiforge.sources import require_setting

from ._dialects import DuckDBDialect, Params, quote_identifier
from ._duckdb import check_select, duckdb_session
from ._sqlsource import SqlSource

__all__ = ["SOURCE_VIEW", "FileSource"]

_READERS = {"csv": "read_csv_auto", "parquet": "read_parquet", "json": "read_json_auto"}
_OPTION = re.compile(r"^[a-z_][a-z0-9_]*$")
SOURCE_VIEW = "source"  # what a query: calls the files


class FileSource(SqlSource):
    dialect = DuckDBDialect()

    def __init__(self, name: str, settings: Mapping[str, Any], project_dir: Path, fmt: str):
        super().__init__(name, settings)
        self.kind = fmt
        raw = require_setting(name, settings, "path")
        patterns = [raw] if isinstance(raw, str) else list(raw)
        if not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise SourceError(f"source '{name}': 'path' must be a path or a list of paths")
        self.patterns = [str(Path(project_dir) / p) for p in patterns]
        self.shown = patterns
        options = settings.get("options") or {}
        if not isinstance(options, Mapping):
            raise SourceError(f"source '{name}': 'options' must be a mapping")
        for key, value in options.items():
            if not isinstance(key, str) or not _OPTION.match(key):
                raise SourceError(f"source '{name}': invalid reader option name {key!r}")
            if isinstance(value, (Mapping, list, tuple)):
                raise SourceError(f"source '{name}': reader option '{key}' must be a single value")
        # several files of one source may list their columns in different orders
        self.options = {"union_by_name": True, **options}
        if settings.get("table") is not None:
            raise SourceError(f"source '{name}': a {fmt} source reads 'path'; it has no 'table' "
                              f"(use 'query' to select from the files, named {SOURCE_VIEW})")
        query = settings.get("query")
        if query is not None and (not isinstance(query, str) or not query.strip()):
            raise SourceError(f"source '{name}': 'query' must be a SQL SELECT")
        self.query = query.strip().rstrip(";").strip() if query is not None else None
        if self.query is not None:
            check_select(name, self.query)
        if fmt == "csv":
            self.decimal_hint = ('; if the file writes decimal commas, set options: '
                                 '{decimal_separator: ","} on the source; currency signs or units '
                                 'in the values need an expression: that removes them')

    @property
    def where(self) -> str:
        files = ", ".join(self.shown)
        return f"the query over {files}" if self.query is not None else files

    def files(self) -> list[str]:
        found: list[str] = []
        for pattern, shown in zip(self.patterns, self.shown):
            matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else (
                [pattern] if Path(pattern).exists() else [])
            if not matches:
                raise SourceError(f"source '{self.name}': no file matches '{shown}'")
            found.extend(m for m in matches if m not in found)
        return found

    def relation(self, params: Params) -> str:
        arguments = [params.add(self.files())]
        arguments.extend(f"{key} := {params.add(value)}" for key, value in self.options.items())
        reader = f"{_READERS[self.kind]}({', '.join(arguments)})"
        if self.query is None:
            return reader
        # A CTE rather than a view: a view cannot take bound parameters (the file list). The
        # query sits in a subquery of its own so that it may start with its own WITH, and the
        # run's time filter goes around it, on its result.
        return (f"(WITH {quote_identifier(SOURCE_VIEW)} AS (SELECT * FROM {reader}) "
                f"SELECT * FROM ({self.query}\n) AS __query)")

    def _session(self, setup: Sequence[str]) -> Any:
        return duckdb_session(setup=setup)
