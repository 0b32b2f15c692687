"""The rendered SQL of a SQL source's request, remembered between runs (``QueryCache``).

Rendering the one aggregate query imports sqlglot and its generator for the engine, about
150 ms of CPU of every ``kpiforge run``, for a text that is the same for the same request. So
:func:`cached_query` looks the SQL and its bound parameters up under a key of everything the
text depends on, and renders (and stores) it only on a miss:

* the code that renders it: the size and modification time of every module of this package
  and of the modules defining the source's and the dialect's classes (their whole MRO: a
  third-party subclass too), so that an edit of an editable install is a miss; the installed
  sqlglot (its ``dist-info`` names and ``_version.py``, found without importing it); the zone
  file of the request's time zone (zone offsets decide SQLite's CASE and whether a day bound is
  exact); kpiforge's and Python's versions (``QueryCache`` adds those);
* the source: its class, its dialect (class, attributes, parameter style), the FROM item's text
  and the parameters it bound (file lists, reader options), the time column and its described
  type, the queried span;
* the whole request: grain, time zone, week start, ranges, dimensions, and every input with its
  aggregation, column or expression, filter and row condition, in order.

So a hit is only ever the SQL of exactly this request; a value the cache cannot keep exactly
(an aware datetime, a Decimal, an object of a subclass) makes the key None: rendered each time.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from kpiforge.sources import Condition, InputSpec, QueryCache, SourceRequest

from ._dialects import Params

if TYPE_CHECKING:
    from ._sqlsource import SqlSource

__all__ = ["cached_query"]

Render = Callable[[Params, str], tuple[str, dict[str, Any]]]


def cached_query(source: SqlSource, kind: str, request: SourceRequest,
                 span: tuple[datetime, datetime] | None, time_type: str, render: Render,
                 ) -> tuple[str, dict[str, Any]]:
    """``(sql, params)`` of the ``kind`` query (``aggregate``, ``latest``) of ``request``:
    ``render(params, relation)`` makes it on a miss, with the FROM item already bound into
    ``params``; a hit gives back the very text and parameters it made."""
    params = Params(source.dialect.param_style)  # the relation binds first (file paths)
    relation = source.relation(params)
    cache = QueryCache.open()
    key = None
    if cache.enabled:
        try:
            parts = _parts(source, kind, request, span, time_type, relation, params)
        except TypeError:  # something the key cannot hold exactly: no cache for this query
            parts = None
        key = cache.key(*parts) if parts is not None else None
    found = cache.get(key)
    if found is not None:
        return found
    sql, values = render(params, relation)
    cache.put(key, sql, values)
    return sql, values


def _parts(source: SqlSource, kind: str, request: SourceRequest,
           span: tuple[datetime, datetime] | None, time_type: str, relation: str,
           params: Params) -> list[Any]:
    dialect = source.dialect
    classes = (type(source), type(dialect))
    return [
        "sql", kind, _code(classes), _sqlglot(), _zone(request.timezone),
        [_name(type(source)), source.time, relation, dict(params.values), time_type,
         list(span) if span is not None else None],
        [_name(type(dialect)), dialect.name, dialect.glot, dialect.param_style, dialect.text_type,
         dialect.float_type, dialect.window_first_last, dialect.case_sensitive_names,
         dialect.boolean_flags, dialect.day_rollup, dialect.ordered_aggregates,
         dict(vars(dialect))],
        _request(request),
    ]


def _request(request: SourceRequest) -> list[Any]:
    if type(request) is not SourceRequest:
        raise TypeError("a request of another class")
    inputs = []
    for key, spec in request.inputs.items():
        if type(spec) is not InputSpec:
            raise TypeError("an input of another class")
        where = spec.where
        condition = None
        if where is not None:
            if type(where) is not Condition:
                raise TypeError("a condition of another class")
            condition = [where.text, where.columns, where.values]
        inputs.append([key, spec.name, spec.agg, spec.column, spec.expression, dict(spec.filter),
                       condition])
    return [request.grain, request.timezone, request.week_start, request.ranges, request.dims,
            inputs]


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _stat(path: str) -> list[Any]:
    try:
        info = os.stat(path)
    except OSError:
        return [path, None, None]
    return [path, info.st_size, info.st_mtime_ns]


@functools.lru_cache(maxsize=32)
def _code(classes: tuple[type, ...]) -> list[Any]:
    """Size and modification time of the modules that render the query (see the docstring)."""
    files = {str(p) for p in Path(__file__).parent.glob("*.py")}
    for cls in classes:
        for klass in cls.__mro__:
            module = sys.modules.get(klass.__module__)
            path = getattr(module, "__file__", None)
            if isinstance(path, str):
                files.add(path)
    return [_stat(f) for f in sorted(files)]


def _distributions(site: Path, prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(site) if n.lower().startswith(prefix)
                      and n.endswith((".dist-info", ".egg-info")))
    except OSError:
        return []


@functools.lru_cache(maxsize=1)
def _sqlglot() -> list[Any]:
    """The installed sqlglot, without importing it: its distributions and ``_version.py``."""
    spec = importlib.util.find_spec("sqlglot")
    if spec is None or not spec.origin:
        return []
    package = Path(spec.origin).parent
    try:
        version = (package / "_version.py").read_text(encoding="utf-8", errors="replace")
    except OSError:
        version = None
    return [str(package), _distributions(package.parent, "sqlglot"), version]


@functools.lru_cache(maxsize=16)
def _zone(name: str) -> list[Any]:
    """The zone file ``zoneinfo`` reads for ``name``: the first in its path, else tzdata's."""
    import zoneinfo

    for folder in zoneinfo.TZPATH:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return _stat(path)
    spec = importlib.util.find_spec("tzdata")
    if spec is None or not spec.origin:
        return [name]
    return [name, _distributions(Path(spec.origin).parent.parent, "tzdata")]
