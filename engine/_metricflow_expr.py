"""Formulas and MetricFlow derived-metric expressions, both ways.

A derived metric's ``expr`` is SQL over its input metrics; kpiforge's formula language shares
its arithmetic (``+ - * /``, parentheses, numbers), so both directions go through Python's
``ast``: only that arithmetic and a few functions with the same meaning on both sides are
translated, the rest raises :class:`Untranslatable` (listed by the commands, never guessed).
"""

from __future__ import annotations

import ast
from typing import Mapping

__all__ = ["Untranslatable", "formula_from_sql", "formula_to_sql"]

# kpiforge function -> SQL function (total() and where() have none: a share of the whole
# breakdown, and a condition)
_TO_SQL = {"abs": "ABS", "round": "ROUND", "sqrt": "SQRT", "exp": "EXP", "coalesce": "COALESCE",
          "min": "LEAST", "max": "GREATEST"}
_FROM_SQL = {sql.lower(): name for name, sql in _TO_SQL.items()}
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div)


class Untranslatable(Exception):
    """Why an expression has no form on the other side."""


def _number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
        and not isinstance(node.value, bool)


class _ToSql(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.AST:
        name = node.func.id if isinstance(node.func, ast.Name) else "?"
        if name not in _TO_SQL or node.keywords:
            raise Untranslatable(f"function {name}() has no MetricFlow (SQL) equivalent")
        return ast.Call(func=ast.Name(id=_TO_SQL[name], ctx=ast.Load()),
                        args=[self.visit(a) for a in node.args], keywords=[])

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        if isinstance(node.op, ast.Pow):  # SQL has no operator for it
            return ast.Call(func=ast.Name(id="POWER", ctx=ast.Load()),
                            args=[self.visit(node.left), self.visit(node.right)], keywords=[])
        if not isinstance(node.op, _ARITHMETIC):
            raise Untranslatable(f"operator {type(node.op).__name__} has no MetricFlow form")
        return ast.BinOp(left=self.visit(node.left), op=node.op, right=self.visit(node.right))

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return ast.UnaryOp(op=node.op, operand=self.visit(node.operand))
        if isinstance(node, ast.Name) or _number(node):
            return node
        raise Untranslatable(f"{type(node).__name__} (a condition or comparison) has no "
                             "MetricFlow form")


def formula_to_sql(tree: ast.expr) -> str:
    """A checked formula tree (``check_formula``) as a derived metric's expression; its names
    stay as they are (the metrics' aliases)."""
    return ast.unparse(_ToSql().visit(tree))


class _FromSql(ast.NodeTransformer):
    def __init__(self, expr: str, names: Mapping[str, str]):
        self.expr = expr
        self.names = names

    def visit_Call(self, node: ast.Call) -> ast.AST:
        name = node.func.id.lower() if isinstance(node.func, ast.Name) else "?"
        args = [self.visit(a) for a in node.args]
        if name == "power" and len(args) == 2 and not node.keywords:
            return ast.BinOp(left=args[0], op=ast.Pow(), right=args[1])
        if name not in _FROM_SQL or node.keywords:
            raise Untranslatable(f"expression {self.expr!r}: function {name} has no kpiforge "
                                 "equivalent")
        return ast.Call(func=ast.Name(id=_FROM_SQL[name], ctx=ast.Load()), args=args,
                        keywords=[])

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id not in self.names:
            raise Untranslatable(f"expression {self.expr!r} uses {node.id!r}, not one of its "
                                 "metrics")
        # parenthesised: a substituted ratio keeps its precedence (dropped later where useless)
        return ast.Name(id=f"({self.names[node.id]})", ctx=ast.Load())

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        if not isinstance(node.op, _ARITHMETIC):
            raise Untranslatable(f"expression {self.expr!r} uses operator "
                                 f"{type(node.op).__name__}, which kpiforge formulas lack")
        return ast.BinOp(left=self.visit(node.left), op=node.op, right=self.visit(node.right))

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.Expression):
            return ast.Expression(body=self.visit(node.body))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return ast.UnaryOp(op=node.op, operand=self.visit(node.operand))
        if _number(node):
            return node
        raise Untranslatable(f"expression {self.expr!r} uses {type(node).__name__}, which "
                             "kpiforge formulas lack")


def formula_from_sql(expr: str, names: Mapping[str, str]) -> str:
    """A derived metric's SQL ``expr`` as formula text, each metric alias replaced by
    ``names[alias]`` (an input, a KPI id or a formula of its own)."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise Untranslatable(f"expression {expr!r} is not arithmetic kpiforge can read") from None
    return ast.unparse(_FromSql(expr, names).visit(tree))
