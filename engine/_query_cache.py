"""A cache of rendered SQL queries, next to the schema verdicts (:mod:`kpiforge._verdicts`).

The SQL a source runs for a request is always the same text for the same request, settings and
code, but rendering it (sqlglot: its expressions, the engine's generator) was about 150 ms of
CPU of every ``kpiforge run``, more than the query itself on small data. So a source may
remember the SQL text and its bound parameters under the sha256 of everything they depend on
(the caller's ``parts``, which must name all of it, plus :data:`FORMAT`, kpiforge's version,
Python's and the engine modules of the source contract, by size and modification time, so that
an edited editable install is a miss) and skip the rendering on the next run.

Each query is one file, ``queries/<key>``, in :func:`~kpiforge._verdicts.cache_dir` (the same
folder, the same ``KPIFORGE_CACHE_DIR`` / ``KPIFORGE_NO_CACHE``): a header with the format, the
key again, and the query as tagged JSON, so that a value comes back as the very type it was
(``1``, ``1.0`` and ``True``, a tuple and a list, a date and a datetime stay apart). A value of
any other type, an aware datetime included, is not cached. At most :data:`MAX_ENTRIES` files
(the least recently used are removed) of at most :data:`MAX_BYTES` each. Writes are atomic (a
temporary file renamed over the old one); a missing, cut-short, foreign or corrupt file is a
miss and a folder that cannot be written is no cache, never an error. The cache is as trusted
as the user's home; definition files cannot reach it, since a key covers the whole request.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any, Mapping

from . import __version__
from ._cache_home import keep_newest, write_atomically
from ._digest import sha256

__all__ = ["FORMAT", "MAX_BYTES", "MAX_ENTRIES", "QueryCache", "decode", "encode"]

FORMAT = 1
MAX_ENTRIES = 256
MAX_BYTES = 1 << 20  # a longer query (a SQLite zone CASE over centuries) is rendered each time
_FOLDER = "queries"
_HEADER = f"kpiforge query cache {FORMAT}\n"
# the engine modules whose code shapes a source's SQL (request, conditions, zone questions)
_CONTRACT = ("sources.py", "_conditions.py", "_periods.py")


def encode(value: Any) -> Any:
    """``value`` as JSON that :func:`decode` turns back into an equal value of the same types;
    TypeError for anything else (an aware datetime, a Decimal, a subclass of int...)."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return ["f", repr(value)]  # keeps 1.0 apart from 1, and nan / inf
    if kind in (list, tuple):
        return ["l" if kind is list else "t", [encode(v) for v in value]]
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise TypeError("a mapping with keys that are not text")
        return ["m", [[k, encode(v)] for k, v in value.items()]]
    if kind is date:
        return ["d", value.isoformat()]
    if kind is datetime and value.tzinfo is None:
        return ["dt1" if value.fold else "dt", value.isoformat()]  # isoformat() loses fold
    raise TypeError(f"{kind.__name__} is not cached")


def decode(data: Any) -> Any:
    """The value :func:`encode` encoded; ValueError (or TypeError) on anything else."""
    if data is None or type(data) in (bool, int, str):
        return data
    if type(data) is not list or len(data) != 2:
        raise ValueError("not an encoded value")
    tag, body = data
    if tag == "f" and type(body) is str:
        return float(body)
    if tag in ("l", "t") and type(body) is list:
        items = [decode(v) for v in body]
        return items if tag == "l" else tuple(items)
    if tag == "m" and type(body) is list:
        return {_text(k): decode(v) for k, v in (_pair(p) for p in body)}
    if tag == "d" and type(body) is str:
        return date.fromisoformat(body)
    if tag in ("dt", "dt1") and type(body) is str:
        value = datetime.fromisoformat(body)
        if value.tzinfo is not None:
            raise ValueError("an aware datetime")
        return value.replace(fold=1) if tag == "dt1" else value
    raise ValueError(f"unknown tag {tag!r}")


def _pair(item: Any) -> tuple[Any, Any]:
    if type(item) is not list or len(item) != 2:
        raise ValueError("not a pair")
    return item[0], item[1]


def _text(value: Any) -> str:
    if type(value) is not str:
        raise ValueError("not text")
    return value


def _dump(value: Any) -> str:
    # ASCII only: any text (lone surrogates too) is written and read back exactly
    return json.dumps(encode(value), separators=(",", ":"), allow_nan=False)


@functools.lru_cache(maxsize=1)
def _stamp() -> bytes:
    """What every key depends on besides the caller's parts (see the module docstring)."""
    here = Path(__file__).parent
    files = []
    for name in _CONTRACT:
        try:
            info = os.stat(here / name)
            files.append([name, info.st_size, info.st_mtime_ns])
        except OSError:
            files.append([name, None, None])
    text = _dump([_HEADER, __version__, list(sys.version_info), files])
    return bytes(sha256(text.encode()).digest())


class QueryCache:
    """Rendered SQL remembered between runs, under a key of everything it depends on.

    A source builds the key from every input of its SQL text (its settings, the request, the
    versions of the code that renders it), looks it up, and on a miss renders the query and
    stores it::

        cache = QueryCache.open()
        key = cache.key("my-source", relation, request_parts, generator_version)
        found = cache.get(key)
        if found is None:
            found = render()
            cache.put(key, *found)
        sql, params = found

    ``get`` gives back exactly the text and the parameters ``put`` stored (values of the types
    ``None``, ``bool``, ``int``, ``float``, ``str``, ``list``, ``tuple``, ``dict`` with text keys,
    ``date`` and naive ``datetime``; a query with any other value is not stored). Nothing here
    raises: a key that cannot be made is None, and None is never found. ``KPIFORGE_NO_CACHE=1``
    turns it off, ``KPIFORGE_CACHE_DIR`` moves it (as for the schema verdicts).
    """

    def __init__(self, folder: Path | None) -> None:
        self._folder = folder

    @classmethod
    def open(cls) -> QueryCache:
        """The cache in kpiforge's cache folder (off when caching is turned off)."""
        from ._verdicts import cache_dir

        folder = cache_dir()
        return cls(folder / _FOLDER if folder is not None else None)

    @property
    def enabled(self) -> bool:
        """Whether queries are looked up and stored at all."""
        return self._folder is not None

    def key(self, *parts: Any) -> str | None:
        """The key of a query whose text depends on ``parts`` (values as for :meth:`get`);
        None without a cache or when a part is of another type."""
        if self._folder is None:
            return None
        try:
            text = _dump(list(parts))
        except (TypeError, ValueError):
            return None
        return sha256(_stamp() + text.encode()).hexdigest()

    def get(self, key: str | None) -> tuple[str, dict[str, Any]] | None:
        """``(sql, params)`` stored under ``key``; None when there is none or it is unreadable."""
        if self._folder is None or key is None:
            return None
        path = self._folder / key
        try:
            with open(path, "rb") as file:
                raw = file.read(MAX_BYTES + 1)
        except (OSError, ValueError):
            return None
        try:
            header, stored, body = raw.decode("ascii").split("\n", 2)
            if f"{header}\n" != _HEADER or stored != key or len(raw) > MAX_BYTES:
                return None
            entry = decode(json.loads(body))
            sql, params = entry["sql"], entry["params"]
        except (ValueError, TypeError, KeyError, RecursionError):
            return None
        if type(sql) is not str or type(params) is not dict:
            return None
        try:
            os.utime(path)  # recently used: removed last
        except OSError:
            pass
        return sql, params

    def put(self, key: str | None, sql: str, params: Mapping[str, Any]) -> None:
        """Store ``(sql, params)`` under ``key``, atomically; any failure only means no cache."""
        if self._folder is None or key is None:
            return
        try:
            text = f"{_HEADER}{key}\n{_dump({'sql': sql, 'params': dict(params)})}\n"
        except (TypeError, ValueError):
            return
        data = text.encode("ascii")
        if len(data) > MAX_BYTES:
            return
        if not write_atomically(self._folder, key, data):
            return
        self._prune()

    def _prune(self) -> None:
        """Keep the :data:`MAX_ENTRIES` most recently used queries (only after a write)."""
        assert self._folder is not None
        keep_newest(self._folder, MAX_ENTRIES)
