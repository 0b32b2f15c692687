"""``total(x)``: x over the whole breakdown being evaluated, read as an input of its own.

``sessions / total(sessions) * 100`` split by traffic source is each source's share. A slice
cannot know the whole from its own row, and summing slices would count a person seen on two
sources twice, so the total is not computed by the formula at all: it is an input named
``total(sessions)`` that the caller provides (a run fetches it from the source again without
the ``--by`` dimensions, so a distinct count is recomputed there). When the caller gives no
``total(x)``, each evaluation is its own whole and ``total(x)`` is ``x``: scalar evaluation,
and a run without ``--by``, where the slice *is* the whole.

So the argument must be one input name: ``total(2)``, ``total(a + b)`` and ``total(total(x))``
are refused by the allow-list, at the argument's column. After the check, each call is
rewritten into a name (``total(x)`` is not a valid identifier, so no input can be called
that), and the rest of the formula engine -- lowering, guards, the explainer, the reasons --
sees an ordinary input.
"""

from __future__ import annotations

import ast
from typing import Any, Callable, Iterable, Mapping

from .errors import FormulaError

__all__ = ["TOTAL", "check_total_argument", "fill_totals", "is_total", "rewrite_totals",
           "total_argument", "total_name", "total_problem"]

TOTAL = "total"
_PREFIX = TOTAL + "("


def is_total(func: Any) -> bool:
    """True for kpiforge's own ``total`` (a plugin cannot take a built-in's name, but a hand-made
    function table could hold another function of that name: it is then an ordinary call)."""
    return getattr(func, "__module__", "") == "kpiforge.plugins.functions" and \
        getattr(func, "__name__", "") == "total"


def total_name(argument: str) -> str:
    """The input name under which ``total(argument)`` is given: ``"total(sessions)"``."""
    return f"{_PREFIX}{argument})"


def total_argument(name: str) -> str | None:
    """``"sessions"`` for ``"total(sessions)"``; None for any other name."""
    if name.startswith(_PREFIX) and name.endswith(")"):
        return name[len(_PREFIX):-1]
    return None


def check_total_argument(node: ast.Call, fail: Callable[[ast.AST, str], FormulaError]) -> None:
    """Refuse a ``total()`` whose (single, the arity is checked first) argument is not a name."""
    arg = node.args[0]
    if type(arg) is ast.Name:
        return
    if type(arg) is ast.Call and type(arg.func) is ast.Name and arg.func.id == TOTAL:
        raise fail(arg, "total() cannot be nested: the total of a total is the total itself")
    what = "a number" if type(arg) is ast.Constant else "an expression"
    raise fail(arg, f"total() takes the name of one input (total(sessions)), not {what}; "
                    "for the total of an expression, write it with totals of its inputs "
                    "(total(a) + total(b))")


class _Rewrite(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.AST:
        if type(node.func) is ast.Name and node.func.id == TOTAL:
            arg = node.args[0]
            assert type(arg) is ast.Name  # check_total_argument made sure
            return ast.copy_location(ast.Name(id=total_name(arg.id), ctx=ast.Load()), node)
        self.generic_visit(node)
        return node


def rewrite_totals(tree: ast.expr, names: set[str], called: set[str]
                   ) -> tuple[ast.expr, set[str], set[str]]:
    """The checked tree with each ``total(x)`` call as the name ``total(x)``; the names gain
    those (``x`` stays a name: it is the value when no total is given), the calls lose
    ``total``."""
    rewritten = _Rewrite().visit(tree)
    found = {n.id for n in ast.walk(rewritten) if type(n) is ast.Name and total_argument(n.id)}
    return rewritten, names | found, called - {TOTAL}


def fill_totals(namespace: Mapping[str, Any], totals: tuple[str, ...]) -> Mapping[str, Any]:
    """``namespace`` with every total it does not give set to its argument's value (each
    evaluation is then its own whole). A total given as None is missing, not replaced."""
    if all(name in namespace for name in totals):
        return namespace
    out = dict(namespace)
    for name in totals:
        if name not in out:
            out[name] = out.get(total_argument(name) or "")
    return out


def total_problem(name: str, inputs: Iterable[str], kpis: Iterable[str]) -> str | None:
    """For a formula name of a definition: None if it is no total; else what is wrong with
    its argument ("" when nothing is, or when the argument is reported as an unknown name).

    Only an input's total is implemented: a run fetches it again from the input's source. A
    KPI's total would need its formula to be additive, and it is seldom what is meant (the
    total of a share is not 100): the message says how to write it with the inputs' totals.
    """
    argument = total_argument(name)
    if argument is None:
        return None
    if argument in inputs or argument not in kpis:
        return ""
    return (f"total({argument}): '{argument}' is a KPI; total() takes a declared input "
            "(write the KPI's formula with the totals of its inputs, e.g. "
            "total(clicks) / total(impressions))")
