"""In-memory sources for embedding: ``dataframe`` and ``records``.

Pass the table to :meth:`kpiforge.Engine.run` with ``data={"events": table}`` (or under the
source's ``data`` key in a dict project). Accepted: a pandas or polars DataFrame, a pyarrow
Table or RecordBatch, or a list of dicts (``records``, which may also be written inline in the
project file). DuckDB scans the object in place through a registered view and aggregates it
with the same single ``GROUP BY`` as the file sources; nothing is copied row by row in Python
except a list of dicts, which has to become a table first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from kpiforge.errors import SourceError
from kpiforge.hookspecs import SourceContext, SourceFactory, SourceTypeRegister, hookimpl

from ._dialects import DuckDBDialect, Params
from ._duckdb import duckdb_session
from ._sqlsource import SqlSource

__all__ = ["RecordsSource", "kpiforge_register_source_types", "to_table"]

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


def _factory(kind: str) -> SourceFactory:
    def make(name: str, settings: Mapping[str, Any], context: SourceContext) -> RecordsSource:
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
