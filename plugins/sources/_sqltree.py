"""The leaves and small shapes of the query tree (sqlglot expressions), shared by every dialect.

Every query a SQL source runs is a sqlglot expression tree (``_sql`` assembles it, the dialects
give the engine-specific pieces) rendered once for the engine. The leaves are:

* columns: quoted identifiers, always (``identify=True`` at rendering);
* bound parameters: the placeholder text ``Params.add`` hands out (``$p0`` for DuckDB, ``:p0``
  for sqlite3 and SQLAlchemy) as a ``Var``, which every generator writes as it is, so a value
  is never a literal in the query;
* the project owner's SQL (a ``query:``, an ``expression:``, a file reader's table function) as
  a ``Var`` too: trusted text in the engine's own syntax, kept out of any parse and written as
  it is (see ``_sql``'s docstring);
* row conditions of definitions (:class:`~kpiforge.sources.Condition`), walked from their
  checked formula-language text into comparisons, arithmetic and ``CASE``, every number bound.

sqlglot is imported when a query is built, never when the plugins load (``kpiforge --help``,
``validate``).
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Any, Sequence

from kpiforge.sources import Condition

if TYPE_CHECKING:
    from sqlglot import exp

    from ._dialects import Params

__all__ = ["alias", "and_", "bind", "call", "cast", "column", "compare", "condition_tree", "count",
           "from_item", "is_null", "or_", "paren", "select_from", "star", "verbatim", "when"]

_QUALIFIED = re.compile(r'"(?:[^"]|"")+"(?:\."(?:[^"]|"")+")*')
_COMPARE = {ast.Eq: "EQ", ast.NotEq: "NEQ", ast.Lt: "LT", ast.LtE: "LTE", ast.Gt: "GT", ast.GtE: "GTE"}
_ARITHMETIC = {ast.Add: "Add", ast.Sub: "Sub", ast.Mult: "Mul"}


# The tree is built from fresh nodes, each placed once (a node used twice is copied where it is
# used): sqlglot's builders are told not to copy their arguments, which was most of the time
# spent building a query.
def paren(node: exp.Expr) -> exp.Paren:
    """``(node)``."""
    from sqlglot import exp

    return exp.Paren(this=node)


def and_(*conditions: exp.Expr) -> exp.Expr:
    """``a AND b ...`` (one condition: itself)."""
    from sqlglot import exp

    return exp.and_(*conditions, copy=False)


def or_(*conditions: exp.Expr) -> exp.Expr:
    """``a OR b ...`` (one condition: itself)."""
    from sqlglot import exp

    return exp.or_(*conditions, copy=False)


def alias(node: exp.Expr, name: str) -> exp.Expr:
    """``node AS "name"``."""
    from sqlglot import exp

    return exp.alias_(node, name, quoted=True, copy=False)


def select_from(columns: Sequence[exp.Expr], source: exp.Expr, name: str | None = None) -> exp.Select:
    """``SELECT columns FROM source``: ``source`` a query, as a subquery called ``name``, or a
    FROM item."""
    from sqlglot import exp

    if name is not None:
        assert isinstance(source, exp.Query)
        source = source.subquery(name, copy=False)
    return exp.select(*columns, copy=False).from_(source, copy=False)


def star(table: str) -> exp.Column:
    """``"table".*``."""
    from sqlglot import exp

    return exp.Column(this=exp.Star(), table=exp.to_identifier(table, quoted=True))


def column(name: str, table: str | None = None) -> exp.Column:
    """The column ``name`` (of ``table``), a quoted identifier."""
    from sqlglot import exp

    return exp.column(name, table=table, quoted=True)


def bind(params: Params, value: Any) -> exp.Var:
    """``value`` as a bound parameter: its placeholder in the tree, its value in ``params``."""
    from sqlglot import exp

    return exp.Var(this=params.add(value))


def verbatim(sql: str) -> exp.Var:
    """Trusted SQL written as it is (the owner's, or a placeholder's text)."""
    from sqlglot import exp

    return exp.Var(this=sql)


def cast(node: exp.Expr, type_name: str, dialect: str | None = None) -> exp.Cast:
    """``CAST(node AS type_name)``; the type is sqlglot's (``double``, ``date``) unless read in
    ``dialect``'s syntax."""
    from sqlglot import exp

    return exp.Cast(this=node, to=exp.DataType.build(type_name, dialect=dialect))


def call(name: str, *args: exp.Expr | str | int) -> exp.Anonymous:
    """``name(args...)`` exactly as the engine spells it (no sqlglot rewriting of the function);
    ``str`` arguments are string literals, ``int`` ones numbers."""
    from sqlglot import exp

    nodes = [exp.Literal.string(a) if isinstance(a, str) else exp.Literal.number(a)
             if isinstance(a, int) else a for a in args]
    return exp.Anonymous(this=name, expressions=nodes)


def compare(a: exp.Expr, op: str, b: exp.Expr) -> exp.Expr:
    """``a op b`` for ``op`` one of ``>= < > <=``."""
    from sqlglot import exp

    kinds: dict[str, type[exp.Expr]] = {">=": exp.GTE, "<": exp.LT, ">": exp.GT, "<=": exp.LTE}
    return kinds[op](this=a, expression=b)


def is_null(node: exp.Expr, negate: bool = False) -> exp.Is:
    """``node IS NULL`` (``IS NOT NULL`` with ``negate``)."""
    from sqlglot import exp

    return exp.Is(this=node, expression=exp.null(), negate=negate)


def count(node: exp.Expr | None = None) -> exp.Count:
    """``COUNT(node)`` (``COUNT(*)`` without one), a 64-bit count where the engine has two
    (SQL Server's ``COUNT_BIG``)."""
    from sqlglot import exp

    return exp.Count(this=node if node is not None else exp.Star(), big_int=True)


def when(*branches: tuple[exp.Expr, exp.Expr],
         otherwise: exp.Expr | None = None) -> exp.Case:
    """``CASE WHEN c THEN v ... [ELSE otherwise] END``."""
    from sqlglot import exp

    case = exp.Case(ifs=[exp.If(this=c, true=v) for c, v in branches])
    if otherwise is not None:
        case.set("default", otherwise)
    return case


def from_item(relation: str | exp.Expr, alias: str) -> exp.Expr:
    """The FROM item ``relation`` under ``alias``: a quoted ``"schema"."table"`` becomes a table
    the target engine quotes its own way; anything else (a table function, a ``(query)``) is the
    source's SQL, kept as written."""
    from sqlglot import exp

    table_alias = exp.TableAlias(this=exp.to_identifier(alias, quoted=True))
    if not isinstance(relation, str):
        return exp.Table(this=relation, alias=table_alias)
    if _QUALIFIED.fullmatch(relation):
        parts = [p.replace('""', '"') for p in re.findall(r'"((?:[^"]|"")+)"', relation)]
        names = [exp.to_identifier(p, quoted=True) for p in parts]
        keys = ("this", "db", "catalog")[:len(names)]
        return exp.Table(**dict(zip(keys, reversed(names))), alias=table_alias)
    return exp.Table(this=verbatim(relation), alias=table_alias)


def condition_tree(condition: Condition, params: Params) -> exp.Expr:
    """A definition's row condition as a tree: columns quoted, every number bound, divisions in
    floating point with NULL for a zero divisor (as ``Condition.sql`` writes them). The text
    passed the formula allow-list when the definition loaded: only the nodes below occur."""
    from sqlglot import exp

    columns, values = dict(condition.columns), dict(condition.values)

    def node(n: ast.AST) -> exp.Expr:
        if isinstance(n, ast.BoolOp):
            joined = and_ if isinstance(n.op, ast.And) else or_
            return paren(joined(*(node(v) for v in n.values)))
        if isinstance(n, ast.UnaryOp):
            if isinstance(n.op, ast.Not):
                return paren(exp.Not(this=node(n.operand)))
            inner = node(n.operand)
            return paren(exp.Neg(this=inner) if isinstance(n.op, ast.USub) else inner)
        if isinstance(n, ast.Compare):
            parts, left = [], node(n.left)
            for op, comparator in zip(n.ops, n.comparators):
                right = node(comparator)
                parts.append(paren(getattr(exp, _COMPARE[type(op)])(this=left, expression=right)))
                left = right.copy()
            return parts[0] if len(parts) == 1 else paren(and_(*parts))
        if isinstance(n, ast.BinOp):
            a, b = node(n.left), node(n.right)
            if isinstance(n.op, ast.Div):
                divisor = exp.Nullif(this=b, expression=exp.Literal.number(0))
                return paren(exp.Div(this=cast(a, "double"), expression=divisor))
            return paren(getattr(exp, _ARITHMETIC[type(n.op)])(this=a, expression=b))
        if isinstance(n, ast.IfExp):
            return paren(when((node(n.test), node(n.body)), otherwise=node(n.orelse)))
        if isinstance(n, ast.Name):
            return bind(params, values[n.id]) if n.id in values else column(columns[n.id])
        if isinstance(n, ast.Constant):
            return bind(params, n.value)
        raise AssertionError(f"unchecked node {type(n).__name__}")  # compile_condition refused it

    return node(ast.parse(condition.text, mode="eval").body)
