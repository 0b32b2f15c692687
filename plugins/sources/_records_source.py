"""The in-memory sources' implementation (``records`` registers them and documents them).

Imported when such a source is made, not when the plugin registers its types.
"""


from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from kpiforge.errors import SourceError

from ._dialects import DuckDBDialect, Params
from ._duckdb import duckdb_session
from ._sqlsource import SqlSource

__all__ = ["RecordsSource", "to_table"]

DATAFRAME_EXTRA_HINT = "pip install 'kpiforge[dataframe]'"
_VIEW = "__kpiforge_data"


def to_table(name: str, data: Any) -> Any:
    """Something DuckDB can register as a view: pandas/pyarrow as is, polars and lists via arrow."""
    module = type(data).__module__.split(".")[0]
    if module in ("pandas", "pyarrow"):
        return data
    if module == "polars":
        try:
            return data.to_arrow()
        except ImportError as exc:
            raise SourceError(f"source '{name}': reading a polars DataFrame needs pyarrow: "
                              f"{DATAFRAME_EXTRA_HINT}") from exc
    if isinstance(data, (list, tuple)):
        if not all(isinstance(row, Mapping) for row in data):
            raise SourceError(f"source '{name}': records must be a list of mappings (dicts)")
        rows = [dict(row) for row in data]
        try:
            import pyarrow
        except ImportError:
            pyarrow = None
        if pyarrow is not None:
            try:
                return pyarrow.Table.from_pylist(rows)
            except (pyarrow.ArrowException, TypeError, ValueError) as exc:
                raise SourceError(f"source '{name}': records cannot form a table: {exc}") from exc
        try:
            import pandas
        except ImportError as exc:
            raise SourceError(f"source '{name}': reading records needs pyarrow or pandas: "
                              f"{DATAFRAME_EXTRA_HINT}") from exc
        return pandas.DataFrame.from_records(rows)
    raise SourceError(f"source '{name}': expected a pandas/polars DataFrame, a pyarrow Table or a "
                      f"list of dicts, got {type(data).__name__}")


class RecordsSource(SqlSource):
    dialect = DuckDBDialect()

    def __init__(self, name: str, settings: Mapping[str, Any], project_dir: Path, kind: str):
        super().__init__(name, settings)
        self.kind = kind
        data = settings.get("data")
        if data is None:
            raise SourceError(f"source '{name}' ({kind}) has no data: pass it to project.run(..., "
                              f"data={{'{name}': table}})")
        self.table = to_table(name, data)

    def relation(self, params: Params) -> str:
        return _VIEW

    @property
    def where(self) -> str:
        return f"the {self.kind} data"

    def _session(self, setup: Sequence[str]) -> Any:
        return duckdb_session(setup=setup, register={_VIEW: self.table})
