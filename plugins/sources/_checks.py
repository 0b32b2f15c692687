"""Data errors in words: columns checked before a query runs, engine errors translated after.

Before the aggregate query runs, the source's relation is described (DuckDB ``DESCRIBE``, a
``LIMIT 0`` query, SQLAlchemy's inspector) and every column the project names is looked up in
it, so that a typo is reported as *this input of this source names a column that is not in this
file* with a did-you-mean, instead of a Binder Error quoting generated SQL. A number aggregated
from a text column (``95.59€``, decimal commas) is caught the same way.

What only the engine can find (a value that does not convert, a CSV line the reader cannot
parse, a missing or unreadable file) is translated from its message. The generated SQL and the
engine's own words go into ``SourceError.debug``, which only ``--debug`` shows.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from kpiforge.errors import ColumnsError, SourceError, did_you_mean

if TYPE_CHECKING:
    from kpiforge.sources import InputSpec, SourceRequest

__all__ = ["ColumnsError", "check_columns", "is_text_type", "translate"]

# aggregations that need numbers; count and count_distinct take any type
NUMERIC_AGGREGATIONS = frozenset({"sum", "avg", "min", "max", "first", "last"})
_TEXT_TYPES = ("VARCHAR", "TEXT", "CHAR", "CHARACTER", "STRING", "BPCHAR", "NVARCHAR", "CLOB")
_SHOWN_COLUMNS = 20

def is_text_type(type_name: str) -> bool:
    """Whether an engine's column type ``type_name`` holds text (``VARCHAR``, ``TEXT(20)``, ...)."""
    name = type_name.strip().upper()
    return any(name == t or name.startswith(t + "(") or name.startswith(t + " ") for t in _TEXT_TYPES)


def _listing(columns: Sequence[str]) -> str:
    shown = ", ".join(columns[:_SHOWN_COLUMNS])
    more = len(columns) - _SHOWN_COLUMNS
    return shown + (f" and {more} more" if more > 0 else "") if columns else "none"


def check_columns(name: str, where: str, described: Mapping[str, str], request: "SourceRequest",
                  time: str, *, case_sensitive: bool, text_example: Any = None,
                  decimal_hint: str = "") -> None:
    """Raise :class:`ColumnsError` listing every column the request names that ``described``
    (column -> type) lacks, and every numeric aggregation of a text column."""
    columns = list(described)
    folded = {c if case_sensitive else c.lower(): c for c in columns}

    def find(column: str) -> str | None:
        return folded.get(column if case_sensitive else column.lower())

    def missing(column: str) -> str:
        return (f"column '{column}' is not in {where}{did_you_mean(column, columns)}; "
                f"its columns: {_listing(columns)}")

    problems: list[tuple[tuple[str, ...], str]] = []
    if find(time) is None:
        problems.append((("time",), f"source '{name}': time column '{time}' is not in {where}"
                         f"{did_you_mean(time, columns)}; its columns: {_listing(columns)}"))
    for dim in request.dims:
        if find(dim) is None:
            problems.append((("dimensions", dim), f"source '{name}': dimension {missing(dim)}"))
    for spec in request.inputs.values():
        problems.extend(_input_problems(name, where, spec, find, missing, described, text_example,
                                        decimal_hint))
    if problems:
        raise ColumnsError(problems)


def _input_problems(name: str, where: str, spec: "InputSpec", find: Any, missing: Any,
                    described: Mapping[str, str], text_example: Any,
                    decimal_hint: str) -> list[tuple[tuple[str, ...], str]]:
    out: list[tuple[tuple[str, ...], str]] = []
    prefix = f"source '{name}': input '{spec.name}'"
    if spec.expression is None and spec.column != "*":
        column = spec.column or spec.name
        found = find(column)
        if found is None:
            out.append((("inputs", spec.name, "column"), f"{prefix}: {missing(column)}"))
        elif spec.agg in NUMERIC_AGGREGATIONS and is_text_type(described[found]):
            example = text_example(found) if text_example is not None else None
            shown = f" (e.g. {example!r})" if example else ""
            out.append((("inputs", spec.name, "column"),
                        f"{prefix} takes the {spec.agg} of column '{found}' of {where}, which holds "
                        f"text{shown}, not numbers{decimal_hint}"))
    for column in spec.filter:
        if find(column) is None:
            out.append((("inputs", spec.name, "filter", column), f"{prefix}: filter on {missing(column)}"))
    if spec.where is not None:
        for field_name, column in spec.where.columns:
            if find(column) is None:
                bound = f"field '{field_name}'" + (f" (bound to column '{column}')"
                                                   if column != field_name else "")
                out.append((("fields", field_name), f"{prefix}: the condition '{spec.where.text}' "
                            f"reads {bound}: {missing(column)}"))
    return out


# --------------------------------------------------------------------------- engine messages

_PREFIX = re.compile(r"^\s*(?:[A-Z][A-Za-z ]*Error|[A-Za-z.]*Exception)\s*:\s*")
_CSV_LINE = re.compile(r"CSV Error on Line:\s*(\d+)")
_CONVERT = re.compile(r'Error when converting column "([^"]+)"\. (Could not convert string "(.*)" to \'(\w+)\')')
_FILE = re.compile(r"^\s*file\s*=\s*(.+?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def first_line(exc: BaseException) -> str:
    """The engine message's first line without its ``Binder Error:`` style prefix."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    for _ in range(3):  # psycopg inside SQLAlchemy: "(psycopg.errors.X) Error: ..."
        line = re.sub(r"^\([A-Za-z_.]+\)\s*", "", line)
        stripped = _PREFIX.sub("", line)
        if stripped == line:
            break
        line = stripped
    return line.strip()


def translate(exc: BaseException, *, name: str, where: str, doing: str,
              decimal_hint: str = "", debug: str = "") -> SourceError:
    """A located SourceError for an exception a database engine raised."""
    text = str(exc)
    lower = text.lower()
    field: tuple[str, ...] = ()
    csv_line = _CSV_LINE.search(text)
    file_match = _FILE.search(text)
    file = file_match.group(1) if file_match else where
    if csv_line:
        line = csv_line.group(1)
        converting = _CONVERT.search(text)
        if converting:
            column, _, value, target = converting.groups()
            message = (f"{file}, line {line}: column '{column}' holds {value!r}, which is not a "
                       f"{target} like the rows before it; set options: {{sample_size: -1}} on the "
                       f"source to type the column from every row{decimal_hint}")
        else:
            message = f"{file}, line {line}: the CSV reader cannot read this line: {first_line(exc)}"
    elif "unknown or incorrect time zone" in lower:  # MySQL/MariaDB without its zone tables
        named = re.search(r"time zone:? *'([^']*)'", text)
        zone = f"'{named.group(1)}'" if named else "of the project"
        message = (f"{where} does not know the time zone {zone}: load the server's time-zone "
                   "tables (mysql_tzinfo_to_sql /usr/share/zoneinfo | mysql -u root mysql)")
    elif doing == "opening":
        message = f"cannot open {where}: {first_line(exc)}"
    elif "table with name" in lower or "no such table" in lower or (
            "relation" in lower and "does not exist" in lower):
        message = f"{where}: {first_line(exc)}"
        field = ("table",)
    elif "no files found that match" in lower or "no such file" in lower or (
            "does not exist" in lower and "file" in lower):
        message = f"cannot find {where}"
        field = ("path",)
    elif "permission denied" in lower:
        message = f"cannot read {where}: permission denied"
        field = ("path",)
    elif "no magic bytes" in lower or "not a parquet file" in lower:
        message = f"{_shown_path(_quoted_or(text, where))} is not a Parquet file"
        field = ("path",)
    elif "file is not a database" in lower or "not a valid duckdb database" in lower:
        message = f"{where} is not a database file"
        field = ("path",)
    elif "requires the extension" in lower or ("extension" in lower and "not found" in lower):
        extension = re.search(r"extension \"?(\w+)\"?", text)
        message = (f"reading {where} would need the DuckDB extension "
                   f"{extension.group(1) if extension else ''}, and kpiforge does not install or "
                   "load extensions".replace("  ", " "))
    elif "configuration has been locked" in lower:
        message = "a query cannot change DuckDB settings"
        field = ("query",)
    elif "conversion error" in lower or "could not convert" in lower or "invalid input syntax" in lower:
        message = f"a value of {where} does not convert: {first_line(exc)}"
    else:
        message = f"{doing} failed on {where}: {first_line(exc)}"
    return SourceError(f"source '{name}': {message}", field=field,
                       debug=debug or f"{type(exc).__name__}: {text}")


def _quoted_or(text: str, default: str) -> str:
    match = _QUOTED.search(text)
    return match.group(1) if match else default


def _shown_path(path: str) -> str:
    """A path the engine printed, relative to the working directory when it is inside it."""
    import os

    if os.path.isabs(path):
        relative = os.path.relpath(path)
        if not relative.startswith(".."):
            return relative
    return path
