"""SQLite: no time-zone data, values typed one by one (text datetimes, epoch numbers).

SQLite's declared column types do not bind its values (a DATE column may hold epoch numbers or
aware text), so every value is read by its own kind: an epoch number (``typeof`` integer or
real) is a UTC instant, text ending in ``Z`` or ``+hh:mm`` is an aware instant, any other text
is naive local wall time. Instants are converted to local time with a ``CASE`` over the
UTC-offset changes of the project zone in the queried span, computed in Python with zoneinfo
(``utc_offset_changes``); the range filter compares each kind with its own bound, never
converting a row. Periods are built from ``date()``, ``strftime()`` and ``printf()``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

from kpiforge.sources import SourceRequest, utc_offset_changes

from ._dialects import Dialect, Params
from ._sqltree import (
    alias,
    and_,
    bind,
    call,
    cast,
    column,
    compare,
    from_item,
    is_null,
    or_,
    paren,
    when,
)

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = ["SqliteDialect"]


def _typeof_in(c: exp.Expr, *kinds: str) -> exp.Expr:
    from sqlglot import exp

    return exp.In(this=call("typeof", c.copy()), expressions=[exp.Literal.string(k) for k in kinds])


def _aware_text(c: exp.Expr) -> exp.Expr:
    """``c`` (text) ends in ``Z`` or in a ``+hh:mm`` / ``-hh:mm`` offset."""
    from sqlglot import exp

    sign = exp.In(this=call("substr", c.copy(), -6, 1), expressions=[exp.Literal.string("+"),
                                                                      exp.Literal.string("-")])
    colon = exp.EQ(this=call("substr", c.copy(), -3, 1), expression=exp.Literal.string(":"))
    zulu = exp.Like(this=c.copy(), expression=exp.Literal.string("%Z"))
    return paren(or_(zulu, paren(and_(sign, colon))))


def _is_text_and_aware(c: exp.Expr) -> exp.Expr:
    from sqlglot import exp

    return and_(exp.EQ(this=call("typeof", c.copy()), expression=exp.Literal.string("text")),
                    _aware_text(c))


class SqliteDialect(Dialect):
    """SQLite: no time-zone data (an offset ``CASE`` over the queried span), text datetimes,
    epoch numbers, window functions for first/last."""

    name = "sqlite"
    glot = "sqlite"
    window_first_last = True
    day_rollup = True

    def local_time(self, column: exp.Expr, request: SourceRequest, params: Params,
                   span: tuple[datetime, datetime] | None) -> exp.Expr:
        c = column
        utc_number = call("datetime", c.copy(), "unixepoch")
        utc_text = call("datetime", c.copy())
        return paren(when(
            (_typeof_in(c, "integer", "real"), self._to_local(utc_number, request.timezone, span, params)),
            (_is_text_and_aware(c), self._to_local(utc_text, request.timezone, span, params)),
            otherwise=call("datetime", c.copy())))

    def raw_range(self, column: exp.Expr, start: date, end: date, low: datetime,
                  high: datetime, params: Params) -> exp.Expr:
        # The same three kinds of value as local_time(), each compared without the offset CASE:
        # epoch numbers with epoch bounds, aware text (datetime() gives UTC) with UTC bounds,
        # naive text, already local, with the local midnights.
        c = column

        def text(value: datetime) -> exp.Expr:
            return bind(params, value.strftime("%Y-%m-%d %H:%M:%S"))

        def within(value: exp.Expr, lo: exp.Expr, hi: exp.Expr) -> exp.Expr:
            return and_(compare(value, ">=", lo), compare(value.copy(), "<", hi))

        utc_low, utc_high = (v.astimezone(timezone.utc) for v in (low, high))
        local_low, local_high = (datetime.combine(d, time()) for d in (start, end))
        epoch = within(c.copy(), bind(params, int(low.timestamp())), bind(params, int(high.timestamp())))
        aware = within(call("datetime", c.copy()), text(utc_low), text(utc_high))
        naive = within(call("datetime", c.copy()), text(local_low), text(local_high))
        return paren(when((_typeof_in(c, "integer", "real"), epoch), (_is_text_and_aware(c), aware),
                              otherwise=naive))

    def time_kind(self, type_name: str) -> str:
        # A declared type does not bind SQLite's values: every column is read by the general CASE.
        return ""

    def time_missing(self, raw: exp.Expr) -> exp.Expr:
        # numbers are epoch seconds, always readable; text datetime() cannot read gives NULL
        from sqlglot import exp

        unreadable = is_null(call("datetime", raw.copy()))
        return paren(and_(exp.Not(this=_typeof_in(raw, "integer", "real")), unreadable))

    @staticmethod
    def _to_local(utc: exp.Expr, tz: str, span: tuple[datetime, datetime] | None,
                  params: Params) -> exp.Expr:
        if span is None:  # no rows at all: any constant offset gives the same (empty) answer
            span = (datetime(2000, 1, 1), datetime(2000, 1, 2))
        first, last = span
        initial, changes = utc_offset_changes(tz, first - timedelta(days=2), last + timedelta(days=2))
        if not changes:
            return call("datetime", utc, bind(params, _modifier(initial)))
        branches = []
        current = initial
        for instant, offset in changes:
            before = compare(utc.copy(), "<", bind(params, instant.strftime("%Y-%m-%d %H:%M:%S")))
            branches.append((before, bind(params, _modifier(current))))
            current = offset
        return call("datetime", utc, when(*branches, otherwise=bind(params, _modifier(current))))

    def period_start(self, t: exp.Expr, grain: str, week_start: int) -> exp.Expr:
        from sqlglot import exp

        if grain == "day":
            return call("date", t)
        if grain == "week":
            # strftime('%w'): 0 = Sunday .. 6 = Saturday
            weekday = cast(call("strftime", "%w", t.copy()), "int")
            back = paren(exp.Mod(this=paren(exp.Add(this=weekday, expression=exp.Literal.number(13 - week_start))),
                                     expression=exp.Literal.number(7)))
            days = exp.DPipe(this=exp.DPipe(this=exp.Literal.string("-"), expression=back),
                             expression=exp.Literal.string(" days"))
            return call("date", t, days)
        if grain == "month":
            return call("strftime", "%Y-%m-01", t)
        if grain == "quarter":
            month = cast(call("strftime", "%m", t.copy()), "int")
            first = exp.Add(this=exp.Mul(this=paren(exp.Div(
                this=paren(exp.Sub(this=month, expression=exp.Literal.number(1))),
                expression=exp.Literal.number(3), typed=True)), expression=exp.Literal.number(3)),
                expression=exp.Literal.number(1))
            return call("printf", "%s-%02d-01", call("strftime", "%Y", t), first)
        return call("strftime", "%Y-01-01", t)

    def time_bound(self, t: exp.Expr, op: str, value: datetime, params: Params) -> exp.Expr:
        # datetime() renders 'YYYY-MM-DD HH:MM:SS', so text comparison is chronological
        return compare(t, op, bind(params, value.strftime("%Y-%m-%d %H:%M:%S")))

    def first_last(self, value: exp.Expr, t: exp.Expr, condition: exp.Expr,
                   which: str) -> exp.Expr:  # pragma: no cover
        raise NotImplementedError("SQLite uses window functions for first/last")

    def span_query(self, relation: str, time_column: str) -> exp.Expr:
        """The earliest and latest UTC time of the rows (``lo``, ``hi``): the span of the
        offset ``CASE`` when a request has no ranges."""
        from sqlglot import exp

        c = column(time_column)
        as_utc = when((_typeof_in(c, "integer", "real"), call("datetime", c.copy(), "unixepoch")),
                      otherwise=call("datetime", c.copy()))
        return (exp.select(alias(exp.Min(this=as_utc), "lo"),
                           alias(exp.Max(this=as_utc.copy()), "hi"), copy=False)
                .from_(from_item(relation, "__src"), copy=False))


def _modifier(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    return f"{'+' if seconds >= 0 else '-'}{abs(seconds)} seconds"
