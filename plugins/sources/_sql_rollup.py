"""Aggregate expressions of the ONE aggregate query (:mod:`._sql`), and its day roll-up.

A request for weeks, months, quarters or years is grouped twice when every aggregate allows it:
by local day and dimensions over the rows, then by period over the days. The period start is
then computed once per day and slice instead of once per row; the day of a DATE column is the
column itself, so the scan groups the raw values. Sums and counts of days add up to the
period's, minima and maxima too; a distinct count, an average, a first or a last does not, and
keeps the one-level query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from kpiforge.sources import SourceRequest

from ._dialects import Dialect
from ._sqltree import alias, and_, cast, column, count, select_from, star, when

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = ["aggregate", "day_rollup_tree", "flag_condition", "output_query", "rolls_up_days"]


def aggregate(agg: str, rows_counted: bool, value: exp.Expr, condition: exp.Expr | None
              ) -> exp.Expr:
    from sqlglot import exp

    picked = when((condition, value)) if condition is not None else value
    if agg == "count" and rows_counted:  # column "*"
        if condition is None:
            return count()
        return count(when((condition, exp.Literal.number(1))))
    if agg == "count":
        return count(picked)
    if agg == "count_distinct":
        return count(exp.Distinct(expressions=[picked]))
    if agg == "sum":
        # rows exist for this period/slice but none matches the filter: zero, not unknown
        total = exp.Sum(this=picked)
        if condition is None:
            return total
        return exp.Coalesce(this=total, expressions=[exp.Literal.number(0)])
    return {"min": exp.Min, "max": exp.Max, "avg": exp.Avg}[agg](this=picked)


def flag_condition(f: int | None, dialect: Dialect) -> exp.Expr:
    """How an aggregate reads filter flag ``__c<f>``: the boolean column itself, or its 1/0
    compared with 1 on engines without booleans; ``1 = 1`` when there is no filter."""
    from sqlglot import exp

    one = exp.Literal.number(1)
    if f is not None and dialect.boolean_flags:
        return column(f"__c{f}")
    return exp.EQ(this=column(f"__c{f}") if f is not None else one.copy(), expression=one)


# aggregate of the days' aggregates that gives the period's: exact for these (integer counts and
# sums add up; a sum of doubles may differ in its last bits, as a parallel SUM already does)
_ROLL_UP = {"sum": "Sum", "count": "Sum", "min": "Min", "max": "Max"}


def rolls_up_days(dialect: Dialect, request: SourceRequest, plan: Any) -> bool:
    """Whether the request is grouped by local day first, then by period (see
    :func:`day_rollup_tree`): periods longer than a day, and only aggregates whose days add
    up to the period's (a distinct count, an average, a first or a last do not)."""
    return (dialect.day_rollup and request.grain != "day"
            and all(agg in _ROLL_UP for agg, *_ in plan.aggregates))


def day_rollup_tree(rows: exp.Select, where: Sequence[exp.Expr], t: exp.Expr,
                    dim_cols: Sequence[exp.Expr], plan: Any, dialect: Dialect,
                    request: SourceRequest, counted: bool) -> exp.Select:
    """The aggregate query grouped twice: by local day and dimensions over the rows, then by
    period over the days. A period's start is then computed once per day and slice, not once
    per row: over ten million rows of 90 days, a fifth of DuckDB's whole query (the week of a
    DATE is about ten operations per row; the day is the column itself)."""
    from sqlglot import exp

    day = dialect.period_start(t.copy(), "day", request.week_start)
    per_day: list[exp.Expr] = []
    per_period: list[exp.Expr] = []
    for k, (agg, v, f, rows_counted) in enumerate(plan.aggregates):
        condition = flag_condition(f, dialect) if f is not None else None
        per_day.append(alias(aggregate(agg, rows_counted, column(f"__v{v}"), condition), f"__a{k}"))
        part: exp.Expr = column(f"__a{k}")
        if agg == "sum" and dialect.ordered_aggregates:
            # the days' sums added in day order: a parallel engine hands the days over in any
            # order, and a sum of doubles in another order may differ in its last bit; the
            # one-level query gave the same answer on every run of a small table, so does this
            part = exp.Order(this=part, expressions=[exp.Ordered(this=column("__day"))])
        total = getattr(exp, _ROLL_UP[agg])(this=part)
        per_period.append(alias(cast(total, dialect.float_type), f"__a{k}"))
    if counted:
        per_day.append(alias(count(), "__n"))
        per_period.append(alias(cast(exp.Sum(this=column("__n")), dialect.float_type), "__n"))
    days = select_from([alias(day, "__day"), *(d.copy() for d in dim_cols), *per_day], rows,
                       "__rows")
    if where:
        days = days.where(and_(*where), copy=False)
    # by the expression, not its alias: not every engine groups by an output name
    days = days.group_by(day.copy(), *(d.copy() for d in dim_cols), copy=False)
    period = dialect.period_start(column("__day"), request.grain, request.week_start)
    periods = select_from([alias(period, "__p"), star("__days")], days, "__days")
    group = [column("__p"), *dim_cols]
    grouped = (select_from([*(c.copy() for c in group), *per_period], periods, "__periods")
               .group_by(*(c.copy() for c in group), copy=False))
    return output_query(grouped, group, plan, counted, dialect)


def output_query(grouped: exp.Select, group: Sequence[exp.Expr], plan: Any, counted: bool,
                 dialect: Dialect) -> exp.Select:
    """The last layer of both queries: each input a copy of its shared aggregate, under the
    column name ``fetch()`` expects, ordered by period and slice."""
    outputs = [alias(column(f"__a{k}"), f"__i{i}") for i, k in enumerate(plan.columns)]
    if counted:
        outputs.append(column("__n"))
    return (select_from([*(c.copy() for c in group), *outputs], grouped, "__grouped")
            .order_by(*(dialect.ordered(c.copy()) for c in group), copy=False))
