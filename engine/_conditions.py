"""Row conditions of measures (``where: "score >= 9"``): checked once, rendered for any engine.

A definition may define an input as a measure over raw rows, counted or summed where a
condition holds. The condition is written in the formula language and goes through the same
allow-list (:func:`check_formula`, no function calls), so a shared definition file can no more
reach a file or a dunder here than in a formula. Its names are the definition's ``fields``
(bound to columns by the project's source) and ``parameters`` (numbers, bound to their value).

A :class:`Condition` is rendered to SQL with every number as a bound parameter and every
column as a quoted identifier (never text pasted into SQL), and can also be evaluated on numpy
columns for sources that do not speak SQL. Both follow SQL's three-valued logic: a comparison
with NULL (NaN) is unknown, ``not`` unknown is unknown, and a row is kept only where the
condition is true, so the two paths agree row for row.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, cast

from ._formula_check import check_formula
from .errors import FormulaError

if TYPE_CHECKING:  # imported by evaluate: checking a definition's conditions needs no numpy
    import numpy as np

__all__ = ["Condition", "compile_condition"]

_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_CMP = {ast.Eq: "=", ast.NotEq: "<>", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_NP_CMP = {ast.Eq: "equal", ast.NotEq: "not_equal", ast.Lt: "less", ast.LtE: "less_equal",
           ast.Gt: "greater", ast.GtE: "greater_equal"}  # numpy's ufuncs, by name


@dataclass(frozen=True)
class Condition:
    """A checked row condition, its fields bound to columns and its parameters to numbers.

    ``text`` is the condition as written; ``columns`` maps each field it reads to the column
    holding it; ``values`` each parameter to its number. Equal conditions compare (and hash)
    equal, so a source computes the flag of a condition once however many inputs share it.
    """

    text: str
    columns: tuple[tuple[str, str], ...]
    values: tuple[tuple[str, float], ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        """The columns the condition reads, in order of the fields' names."""
        return tuple(column for _, column in self.columns)

    def _tree(self) -> ast.expr:
        tree, _, _ = check_formula(self.text, {})
        return tree

    def sql(self, bind: Callable[[Any], str], quote: Callable[[str], str],
            float_type: str = "DOUBLE PRECISION") -> str:
        """The condition as SQL: ``bind(value)`` returns the placeholder of a bound parameter
        (``Params.add``), ``quote(column)`` a quoted identifier; divisions are done in
        ``float_type`` (no integer division) and by zero give NULL."""
        columns, values = dict(self.columns), dict(self.values)

        def render(node: ast.AST) -> str:
            if isinstance(node, ast.BoolOp):
                joiner = " AND " if isinstance(node.op, ast.And) else " OR "
                return "(" + joiner.join(render(v) for v in node.values) + ")"
            if isinstance(node, ast.UnaryOp):
                if isinstance(node.op, ast.Not):
                    return f"(NOT {render(node.operand)})"
                sign = "-" if isinstance(node.op, ast.USub) else "+"
                return f"({sign}{render(node.operand)})"
            if isinstance(node, ast.Compare):
                parts, left = [], render(node.left)
                for op, comparator in zip(node.ops, node.comparators):
                    right = render(comparator)
                    parts.append(f"({left} {_CMP[type(op)]} {right})")
                    left = right
                return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"
            if isinstance(node, ast.BinOp):
                a, b = render(node.left), render(node.right)
                if isinstance(node.op, ast.Div):
                    return f"(CAST({a} AS {float_type}) / NULLIF({b}, 0))"
                return f"({a} {_OPS[type(node.op)]} {b})"
            if isinstance(node, ast.IfExp):
                return (f"(CASE WHEN {render(node.test)} THEN {render(node.body)} "
                        f"ELSE {render(node.orelse)} END)")
            if isinstance(node, ast.Name):
                if node.id in values:
                    return bind(values[node.id])
                return quote(columns[node.id])
            if isinstance(node, ast.Constant):
                return bind(node.value)
            raise AssertionError(f"unchecked node {type(node).__name__}")  # compile_condition refused it

        return render(self._tree())

    def evaluate(self, data: Mapping[str, Any]) -> np.ndarray:
        """Which rows the condition keeps, given ``data`` (column -> array): a bool array,
        False wherever SQL would give NULL."""
        import numpy as np

        columns, values = dict(self.columns), dict(self.values)
        n = len(next(iter(data.values()))) if data else 1

        def number(node: ast.AST) -> np.ndarray:
            if isinstance(node, ast.Name):
                if node.id in values:
                    return np.full(n, values[node.id], dtype=np.float64)
                return np.asarray(data[columns[node.id]], dtype=np.float64)
            if isinstance(node, ast.Constant):
                return np.full(n, float(cast(float, node.value)), dtype=np.float64)
            if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not):
                operand = number(node.operand)
                return -operand if isinstance(node.op, ast.USub) else operand
            if isinstance(node, ast.BinOp):
                a, b = number(node.left), number(node.right)
                with np.errstate(all="ignore"):
                    if isinstance(node.op, ast.Div):
                        return np.where(b == 0, np.nan, a / np.where(b == 0, 1.0, b))
                    return {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply}[type(node.op)](a, b)
            if isinstance(node, ast.IfExp):
                test, known = truth(node.test)
                chosen = np.where(test, number(node.body), number(node.orelse))
                return np.where(known, chosen, np.nan)
            raise AssertionError(f"unchecked node {type(node).__name__}")

        def truth(node: ast.AST) -> tuple[np.ndarray, np.ndarray]:
            """(value, known): Kleene logic, as SQL's NULL."""
            if isinstance(node, ast.BoolOp):
                pairs = [truth(v) for v in node.values]
                if isinstance(node.op, ast.And):
                    false = np.logical_or.reduce([k & ~v for v, k in pairs])
                    true = np.logical_and.reduce([k & v for v, k in pairs])
                else:
                    true = np.logical_or.reduce([k & v for v, k in pairs])
                    false = np.logical_and.reduce([k & ~v for v, k in pairs])
                return true, true | false
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
                value, known = truth(node.operand)
                return ~value & known, known
            if isinstance(node, ast.Compare):
                results, left = [], number(node.left)
                for op, comparator in zip(node.ops, node.comparators):
                    right = number(comparator)
                    known = ~np.isnan(left) & ~np.isnan(right)
                    results.append((getattr(np, _NP_CMP[type(op)])(left, right) & known, known))
                    left = right
                if len(results) == 1:
                    return results[0]
                # a chained comparison is the AND of its parts
                false = np.logical_or.reduce([k & ~v for v, k in results])
                true = np.logical_and.reduce([k & v for v, k in results])
                return true, true | false
            value = number(node)  # a number used as a truth value: non-zero is true
            known = ~np.isnan(value)
            return (value != 0) & known, known

        kept, known = truth(self._tree())
        return np.asarray(kept & known, dtype=bool)


def compile_condition(text: str, fields: Mapping[str, str], parameters: Mapping[str, float]
                      ) -> Condition:
    """``text`` checked by the formula allow-list and bound: ``fields`` maps each field the
    definition declares to its column, ``parameters`` each parameter to its value. A name that
    is neither, a function call or an operator SQL would read differently is a
    :class:`FormulaError` naming it."""
    tree, names, called = check_formula(text, {})
    if called:
        raise FormulaError(f"a condition cannot call functions ({', '.join(sorted(called))})",
                           code="condition")
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and type(node.op) not in _OPS:
            raise FormulaError("a condition may use + - * / only (not //, % or **)",
                               column=getattr(node, "col_offset", 0) + 1, code="condition")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool)
                                               or not isinstance(node.value, (int, float))):
            raise FormulaError(f"a condition compares numbers; {node.value!r} is not one",
                               column=node.col_offset + 1, code="condition")
    unknown = sorted(names - set(fields) - set(parameters))
    if unknown:
        known = ", ".join(sorted({*fields, *parameters})) or "none"
        raise FormulaError(f"the condition reads {', '.join(repr(u) for u in unknown)}, which is "
                           f"not a field or parameter of the definition (declared: {known})",
                           code="condition")
    used_fields = tuple(sorted((f, fields[f]) for f in names if f in fields and f not in parameters))
    used_values = tuple(sorted((p, float(parameters[p])) for p in names if p in parameters))
    return Condition(text, used_fields, used_values)
