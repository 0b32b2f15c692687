"""Annotations: what people know about a period that the numbers do not say (a tracking change,
an algorithm update, a campaign), written with ``kpiforge annotate`` or
:meth:`kpiforge.Project.annotate` and kept in the history database, beside the values they
explain, so that ``kpiforge history``, reports and the dashboard show them with those values.

(Not to be confused with :mod:`kpiforge._annotations`, which writes CI diagnostics.)

An annotation is about one KPI or every KPI (``kpi == "*"``: a site-wide tracking change
touches them all), one period of any grain, and optionally one slice (``channel=display``). It
covers the days of its period and is shown wherever a period shown overlaps them: a day's note
on its week, month and quarter too, a month's on each of its weeks. A chart draws it once, at
its period holding the note's first day. A slice's note is about the series of that slice (and
of finer splits holding it), not about the totals; a note without a slice is about all of them.

The text is what a person typed, so it is bounded (1 to :data:`MAX_TEXT` characters; each run
of whitespace, newlines included, becomes one space; control and bidirectional-override
characters are refused) and escaped wherever it is shown: by Jinja2 in HTML, by Vega in SVG,
by the report's Markdown escaping, by the terminal's cleaning.
"""

from __future__ import annotations

import getpass
import json
import time
import unicodedata
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

from ._history import History, has_table, history_errors, open_history, write_transaction
from ._periods import GRAINS, Period, finer, parse_period, period_of
from .errors import AnnotationError, PeriodError, StateError, UnknownKpiError, did_you_mean

__all__ = ["ALL_KPIS", "MAX_AUTHOR", "MAX_TEXT", "Annotation", "add_annotations", "annotate",
           "annotation_period", "attach_annotations", "check_text", "delete_annotation",
           "place_annotations", "read_annotations", "span"]

ALL_KPIS = "*"
MAX_TEXT = 500
MAX_AUTHOR = 100
_MAX_VALUE = 200  # a slice's value
# explicit bidirectional formatting: escaping HTML does not stop it reordering what follows
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True, slots=True)
class Annotation:
    """A note about a period: a tracking change, an algorithm update, a campaign.

    ``kpi`` is a KPI id, or ``"*"`` for every KPI; ``period`` its label at ``grain``;
    ``first_day`` and ``last_day`` the days it covers (both included); ``slice`` the dimension
    values it is about (empty: the KPI as a whole and every slice of it); ``created`` when it
    was written (UTC, ISO 8601)."""

    id: int
    kpi: str
    grain: str
    period: str
    first_day: date
    last_day: date
    slice: Mapping[str, str]
    text: str
    author: str
    created: str

    def applies_to(self, kpi: str, slice_: Mapping[str, Any] | None = None) -> bool:
        """Whether it is about ``kpi`` and, when ``slice_`` is given, about that series: every
        value the annotation names is the slice's."""
        if self.kpi not in (ALL_KPIS, kpi):
            return False
        if slice_ is None:
            return True
        return all(slice_.get(k) is not None and str(slice_[k]) == v for k, v in self.slice.items())

    def overlaps(self, first: date, last: date) -> bool:
        """Whether it covers a day of ``first`` .. ``last`` (both included)."""
        return self.first_day <= last and first <= self.last_day

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``kpiforge annotate --list --format json``."""
        return {"id": self.id, "kpi": self.kpi, "period": self.period, "grain": self.grain,
                "first_day": self.first_day.isoformat(), "last_day": self.last_day.isoformat(),
                "slice": dict(self.slice), "text": self.text, "author": self.author,
                "created": self.created}


def span(label: str, week_start: int = 0) -> tuple[date, date]:
    """The first and last day of the period ``label``."""
    period = parse_period(label, week_start)
    return period.start, period.end - timedelta(days=1)


def check_text(text: Any, *, field: str = "text", limit: int = MAX_TEXT,
               required: bool = True) -> str:
    """``text`` as stored: whitespace runs made one space; refused when empty (if
    ``required``), longer than ``limit`` or holding a control character."""
    if not isinstance(text, str):
        raise AnnotationError(field, f"expected text, got {type(text).__name__}")
    cleaned = " ".join(text.split())
    if required and not cleaned:
        raise AnnotationError(field, f"empty; say what happened, in 1 to {limit} characters")
    if len(cleaned) > limit:
        raise AnnotationError(field, f"{len(cleaned)} characters; at most {limit}")
    for char in cleaned:
        if unicodedata.category(char) == "Cc" or char in _BIDI:
            raise AnnotationError(field, f"holds the control character U+{ord(char):04X}; "
                                         "write plain text")
    return cleaned


def annotation_period(text: Any, grain: str | None, week_start: int) -> Period:
    """The period ``text`` (as ``kpiforge run --period`` reads it), or with a coarser
    ``grain`` the period of that grain holding its first day."""
    try:
        period = parse_period(str(text), week_start)
    except PeriodError as exc:
        raise AnnotationError("period", str(exc)) from None
    if grain is None or grain == period.grain:
        return period
    if grain not in GRAINS:
        raise AnnotationError("grain", f"expected one of {', '.join(GRAINS)}, got {grain!r}")
    if finer(grain, period.grain):
        raise AnnotationError("grain", f"{period.label} is a {period.grain}, longer than a "
                                       f"{grain}: give a {grain} as the period, or no grain")
    return period_of(period.start, grain, week_start)  # the week (month...) holding the day


def _kpis(kpis: Sequence[str] | str | None, known: Iterable[str]) -> list[str]:
    asked = [kpis] if isinstance(kpis, str) else list(kpis or [ALL_KPIS])
    asked = list(dict.fromkeys(asked))
    if ALL_KPIS in asked:
        if len(asked) > 1:
            raise AnnotationError("kpi", "'*' means every KPI: give it alone")
        return asked
    ids = sorted(known)
    for kpi in asked:
        if kpi not in ids:
            raise UnknownKpiError(f"unknown KPI '{kpi}'{did_you_mean(kpi, ids)}")
    return asked


def _slice(slice_: Mapping[str, Any] | None, dimensions: Sequence[str]) -> dict[str, str]:
    out = {}
    for dim, value in dict(slice_ or {}).items():
        if dim not in dimensions:
            raise AnnotationError("slice", f"no source has a dimension '{dim}'"
                                           f"{did_you_mean(dim, dimensions)}")
        out[str(dim)] = check_text(str(value), field="slice", limit=_MAX_VALUE)
    return dict(sorted(out.items()))


def annotate(project: Any, text: str, *, period: str, kpis: Sequence[str] | str | None = None,
             grain: str | None = None, slice: Mapping[str, Any] | None = None,
             author: str | None = None, now: float | None = None) -> tuple[Annotation, ...]:
    """:meth:`kpiforge.Project.annotate`: every argument checked against the project first."""
    ws = project.week_start_index
    chosen = annotation_period(period, grain, ws)
    ids = _kpis(kpis, project.engine.definitions)
    values = _slice(slice, project.dimensions())
    note = check_text(text)
    if author is None:
        try:
            author = getpass.getuser()
        except (KeyError, OSError):  # no user name in this environment (containers)
            author = ""
    who = check_text(author, field="author", limit=MAX_AUTHOR, required=False)
    return add_annotations(project.history_path, ids, chosen, values, note, who, now=now)


def add_annotations(path: str, kpis: Sequence[str], period: Period, slice_: Mapping[str, str],
                    text: str, author: str, *, now: float | None = None) -> tuple[Annotation, ...]:
    """Store one annotation per KPI of ``kpis`` (already checked) in one transaction."""
    if path == ":memory:":
        raise StateError("the project's state is ':memory:', so annotations would be gone when "
                         "this ends; give state: a file")
    created = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    stamp = created.isoformat(timespec="seconds").replace("+00:00", "Z")
    last = period.end - timedelta(days=1)
    key = json.dumps(dict(slice_), sort_keys=True, ensure_ascii=False)
    conn = open_history(path, create=True)
    assert conn is not None
    made = []
    try:
        with history_errors(path):
            with write_transaction(conn):
                for kpi in kpis:
                    cursor = conn.execute(
                        "INSERT INTO annotations (kpi, grain, period, first_day, last_day, slice, "
                        "text, author, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (kpi, period.grain, period.label, period.start.isoformat(),
                         last.isoformat(), key, text, author, stamp))
                    made.append(Annotation(int(cursor.lastrowid or 0), kpi, period.grain,
                                           period.label, period.start, last,
                                           MappingProxyType(dict(slice_)), text, author, stamp))
    finally:
        conn.close()
    return tuple(made)


def _row(row: Sequence[Any]) -> Annotation:
    id_, kpi, grain, period, first, last, slice_, text, author, created = row
    return Annotation(int(id_), kpi, grain, period, date.fromisoformat(first),
                      date.fromisoformat(last), MappingProxyType(json.loads(slice_)), text,
                      author, created)


_COLUMNS = "id, kpi, grain, period, first_day, last_day, slice, text, author, created"


def read_annotations(path: str, kpi: str | None = None, *, first: date | None = None,
                     last: date | None = None) -> tuple[Annotation, ...]:
    """The annotations stored at ``path`` (about ``kpi``, those about every KPI included;
    covering a day of ``first`` .. ``last``), by first day and id. Never writes: a missing
    file, or one of a version before annotations, has none."""
    conn = open_history(path, create=False)
    if conn is None:
        return ()
    try:
        with history_errors(path):
            if not has_table(conn, "annotations"):
                return ()
            query, params = f"SELECT {_COLUMNS} FROM annotations WHERE 1 = 1", []
            if kpi is not None:
                query += " AND kpi IN (?, ?)"
                params += [kpi, ALL_KPIS]
            if first is not None:
                query += " AND last_day >= ?"
                params.append(first.isoformat())
            if last is not None:
                query += " AND first_day <= ?"
                params.append(last.isoformat())
            rows = conn.execute(query + " ORDER BY first_day, id", params).fetchall()
    finally:
        conn.close()
    return tuple(_row(r) for r in rows)


def delete_annotation(path: str, annotation_id: int) -> Annotation:
    """Remove the annotation ``annotation_id``; returns what it was."""
    conn = open_history(path, create=False)
    found: list[Any] = []
    if conn is not None:
        try:
            with history_errors(path):
                if has_table(conn, "annotations"):
                    with write_transaction(conn):
                        found = conn.execute(f"SELECT {_COLUMNS} FROM annotations WHERE id = ?",
                                             (annotation_id,)).fetchall()
                        conn.execute("DELETE FROM annotations WHERE id = ?", (annotation_id,))
        finally:
            conn.close()
    if not found:
        raise AnnotationError("id", f"no annotation {annotation_id} in {path}")
    return _row(found[0])


def attach_annotations(history: History, kpi: str, week_start: int = 0) -> History:
    """``history`` with, on each record, the ids of the annotations about its KPI, slice and
    period, and those annotations."""
    if not history.records:
        return history
    notes = read_annotations(history.path, kpi)
    if not notes:
        return history
    records: list[Any] = []
    used: set[int] = set()
    for record in history.records:
        try:
            first, last = span(record.period, week_start)
        except PeriodError:  # a label of another week start: nothing can be matched to it
            records.append(record)
            continue
        ids = tuple(a.id for a in notes if a.applies_to(record.kpi, record.slice)
                    and a.overlaps(first, last))
        used.update(ids)
        records.append(replace(record, annotations=ids))
    return replace(history, records=tuple(records),
                   annotations=tuple(a for a in notes if a.id in used))


def place_annotations(notes: Iterable[Annotation], periods: Sequence[str],
                      week_start: int = 0) -> dict[int, str | None]:
    """For a chart over ``periods``: the period each annotation is drawn at (the one holding
    its first day), or None when that day is outside the chart."""
    spans = []
    for label in periods:
        try:
            spans.append((label, *span(label, week_start)))
        except PeriodError:
            continue
    return {a.id: next((label for label, first, last in spans if first <= a.first_day <= last),
                       None) for a in notes}
