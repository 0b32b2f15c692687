"""The ``spark`` source: a table or files read by a SparkSession, aggregated by Spark itself.

The query is the one every SQL source runs, rendered for Spark SQL by sqlglot (``_glot``), with
named parameters (``spark.sql(sql, args=...)``): the aggregation runs in Spark, on one machine
(``master: local[*]``, the default) or on a cluster (``spark://...``, ``yarn``, or Spark Connect
``sc://host:port``); Python only sees the aggregated rows. Files (``path`` + ``format``:
parquet, csv, json, delta where the cluster has it) are a temporary view of the session.

Time: the session time zone is set to the project's (``SET TIME ZONE``), so a Spark
``TIMESTAMP`` (an instant) is read as local wall time and a ``TIMESTAMP_NTZ`` or ``DATE`` is
local already: nothing is converted row by row in Python, and the bounds are plain casts of
local midnights. pyspark is an extra (``pip install 'kpiforge[spark]'``), imported on first use.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from kpiforge.errors import SourceError

from ._dialects import Dialect, Params, quote_qualified
from ._glot import GlotDialect
from ._sql import empty_select_sql
from ._spark_settings import SPARK_FORMATS, SPARK_SETTINGS_SCHEMA
from ._sqlsource import SqlSource

__all__ = ["SPARK_SETTINGS_SCHEMA", "SparkSource"]

SPARK_HINT = "pip install 'kpiforge[spark]'"
_VIEW = "__kpiforge_files"


class SparkSource(SqlSource):
    kind = "spark"
    decimal_hint = ""

    def __init__(self, name: str, settings: Mapping[str, Any], project_dir: Path):
        super().__init__(name, settings)
        self.dialect = GlotDialect("spark")
        self.master = str(settings.get("master") or "local[*]")
        table, path, query = settings.get("table"), settings.get("path"), settings.get("query")
        if sum(x is not None for x in (table, path, query)) != 1:
            raise SourceError(f"source '{name}': set exactly one of 'table', 'path' and 'query'")
        self.table_name = table
        self.query = query.strip().rstrip(";") if isinstance(query, str) else None
        self.format = str(settings.get("format") or "parquet")
        if self.format not in SPARK_FORMATS:
            raise SourceError(f"source '{name}': format '{self.format}' is not one of "
                              f"{', '.join(SPARK_FORMATS)}", field=("format",))
        paths = [path] if isinstance(path, str) else list(path or [])
        self.paths = [str(Path(project_dir) / p) if "://" not in p else p for p in paths]
        self.database = f"Spark ({self.master})"

    @property
    def where(self) -> str:
        if self.table_name is not None:
            return f"table '{self.table_name}' of {self.database}"
        if self.paths:
            return ", ".join(self.paths)
        return f"the query on {self.database}"

    def relation(self, params: Params) -> str:
        if self.table_name is not None:
            return quote_qualified(self.table_name)
        if self.paths:
            return quote_qualified(_VIEW)
        return f"({self.query})"  # trusted project-owner SQL, in Spark's own syntax

    @contextmanager
    def _session(self, setup: Sequence[str]) -> Iterator["_SparkSession"]:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise SourceError(f"source '{self.name}': the spark source needs pyspark: {SPARK_HINT}",
                              field=("type",)) from exc
        builder = SparkSession.builder.appName("kpiforge")
        if self.master.startswith("sc://"):
            builder = builder.remote(self.master)
        else:
            # one machine: few shuffle partitions (the default 200 is for clusters) and no UI
            builder = (builder.master(self.master).config("spark.ui.enabled", "false")
                       .config("spark.ui.showConsoleProgress", "false")
                       .config("spark.sql.shuffle.partitions", "4"))
        spark = builder.getOrCreate()  # kept for the process: starting Spark takes seconds
        for statement in setup:
            spark.sql(statement)
        if self.paths:
            reader = spark.read.format(self.format)
            if self.format == "csv":
                reader = reader.option("header", "true").option("inferSchema", "true")
            reader.load(self.paths).createOrReplaceTempView(_VIEW)
        yield _SparkSession(spark, self.dialect)


class _SparkSession:
    def __init__(self, spark: Any, dialect: Dialect):
        self.spark = spark
        self.dialect = dialect

    def query(self, sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
        # dates and times as text: CAST(text AS TIMESTAMP) reads it in the session zone, as
        # the local midnight it is (a Python datetime would be converted by the client's zone)
        args = {k: (v.isoformat(sep=" ") if isinstance(v, datetime)
                    else v.isoformat() if isinstance(v, date) else v) for k, v in params.items()}
        frame = self.spark.sql(sql, args=args)
        names = frame.columns
        rows = frame.collect()
        return {name: [row[i] for row in rows] for i, name in enumerate(names)}

    def describe(self, relation: str, params: Mapping[str, Any]) -> dict[str, str]:
        sql = empty_select_sql(relation, self.dialect)
        schema = self.spark.sql(sql).schema
        return {f.name: f.dataType.simpleString().upper() for f in schema.fields}
