"""The null reasons of formula values, and the constructs that stop a poison.

Shared by the fast evaluation paths (``_formulas``, ``_formula_lower``, ``_formula_interp``) and
the explainer (``_explain``, which states the rule), so every path names a failure the same way.
"""

from __future__ import annotations

import ast
from typing import Any, Mapping, cast

from .errors import ArgumentError

REASON_DIVISION = "division by zero"
REASON_NOT_FINITE = "result is not finite"
REASON_DOMAIN = "math domain error"

# builtins with a structural meaning here; looked up by identity so that a plugin's function
# of the same name never gets their treatment
_HANDLERS = ("coalesce", "safe_div", "where")


def builtin(name: str) -> Any:
    from kpiforge.plugins import functions

    return {"coalesce": functions.coalesce, "safe_div": functions.safe_div,
            "where": functions.where, "min": functions.min_, "max": functions.max_,
            "abs": functions.abs_, "round": functions.round_, "sqrt": functions.sqrt,
            "log": functions.log, "exp": functions.exp, "clip": functions.clip}[name]


def reason_of(exc: BaseException | None) -> str:
    """The null reason for an exception a formula operation or function raised."""
    if isinstance(exc, ArgumentError):
        return str(exc)
    if isinstance(exc, ZeroDivisionError):
        return REASON_DIVISION
    if isinstance(exc, OverflowError):
        return REASON_NOT_FINITE
    if isinstance(exc, ValueError) and "domain" in str(exc):
        return REASON_DOMAIN
    if exc is None:
        return REASON_NOT_FINITE
    return f"{type(exc).__name__}: {exc}"


def always_needed(root: ast.expr, functions: Mapping[str, Any]) -> frozenset[str]:
    """Input names whose poison always reaches the result (outside every handling construct)."""
    needed: set[str] = set()
    stack: list[ast.AST] = [root]
    while stack:
        node = stack.pop()
        if type(node) is ast.Name:
            needed.add(node.id)
        elif type(node) is ast.IfExp:
            stack.append(node.test)
        elif type(node) is ast.BoolOp:
            stack.append(node.values[0])
        elif type(node) is ast.Compare:
            stack.extend((node.left, node.comparators[0]))
        elif type(node) is ast.Call:
            name = cast(ast.Name, node.func).id
            spec = functions.get(name)
            func = spec.func if spec is not None else None
            if name in _HANDLERS and func is builtin(name):
                if name == "where":
                    stack.append(node.args[0])
                continue
            stack.extend(node.args)
        else:
            stack.extend(ast.iter_child_nodes(node))
    return frozenset(needed)
