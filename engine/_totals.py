"""``total(x)``: input ``x`` over the whole breakdown being evaluated, for shares of a total.

``sessions / total(sessions) * 100`` with ``--by source`` is each traffic source's share of
all sessions of the period. The total is not computed from the slices: the run asks the source
again for the same periods without the ``--by`` dimensions, so a distinct count's total is
recomputed by the data engine (never a sum of per-slice distinct counts), and the total of a
non-additive input obeys the same additivity rules as the input itself.

In the engine the total is just another input, named ``total(x)`` (a name no definition can
declare): the run fills it in, and a library caller of ``Engine.evaluate`` passes it like any
input (``{"sessions": [530, 470], "total(sessions)": [1000, 1000]}``). Missing, it is null with
``missing input: total(sessions)``, in scalar and array evaluation alike.
"""

from __future__ import annotations

import ast
import copy
from typing import Any

from ._formula_check import FunctionSpec
from .errors import FormulaError

__all__ = ["TOTAL", "input_of", "is_total", "rewrite_totals", "total_key"]


def _never_called(*_args: Any) -> Any:  # total() is replaced by an input before evaluation
    raise AssertionError("total() is rewritten at compile time")


TOTAL = FunctionSpec("total", _never_called, 1, 1,
                     "total(x): input x over the whole breakdown (the period, without --by).")


def total_key(name: str) -> str:
    """The input name the total of input ``name`` goes by: ``total(name)``."""
    return f"total({name})"


def is_total(name: str) -> bool:
    return name.startswith("total(") and name.endswith(")")


def input_of(key: str) -> str:
    """``sessions`` for ``total(sessions)``."""
    return key[len("total("):-1]


def rewrite_totals(tree: ast.expr, column_of: Any) -> tuple[ast.expr, set[str]]:
    """``tree`` with every ``total(x)`` call replaced by the name ``total(x)``, and the ``x``
    of each. ``column_of(node)`` gives the 1-based column of a node for messages. The argument
    must be a plain name: ``total(a / b)`` has no single source to ask."""
    totals: set[str] = set()
    if not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "total"
               for n in ast.walk(tree)):
        return tree, totals

    class Rewrite(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> Any:
            if isinstance(node.func, ast.Name) and node.func.id == "total":
                (arg,) = node.args
                if not isinstance(arg, ast.Name):
                    nested = isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) \
                        and arg.func.id == "total"
                    raise FormulaError("total() takes the name of an input, e.g. total(sessions)"
                                       + ("; a total cannot be nested" if nested else ""),
                                       column=column_of(arg), code="total")
                totals.add(arg.id)
                return ast.copy_location(ast.Name(id=total_key(arg.id), ctx=ast.Load()), node)
            return self.generic_visit(node)

    return Rewrite().visit(copy.deepcopy(tree)), totals
