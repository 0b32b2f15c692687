"""The lowest value a KPI's formula can give, for the catalog's thresholds in words.

A target KPI's statuses are distances from the target, so the words for "more than 4 away from
3" are "< -1 or > 7"; for a frequency (impressions / reach) the "< -1" side can never happen and
reads as nonsense. The catalog drops the sides that lie below the lowest possible value. That
value is 0 only when it is certain: the formula is sums, products and quotients of non-negative
constants and of inputs that cannot be negative (counts, durations, or a declared range starting
at 0 or above); anything else (a subtraction, a function, another KPI, an input without a unit)
gives None, no floor, and both sides stay.
"""

from __future__ import annotations

import ast
from typing import Any

__all__ = ["lowest_value"]

# units whose values are never negative by their meaning
_NON_NEGATIVE_UNITS = frozenset({"count", "seconds"})
_NON_NEGATIVE_OPERATORS = (ast.Add, ast.Mult, ast.Div)


def _input_is_non_negative(spec: Any) -> bool:
    if spec.unit in _NON_NEGATIVE_UNITS:
        return True
    low = spec.range[0] if spec.range else None
    return low is not None and low >= 0


def _non_negative(node: ast.AST, inputs: Any) -> bool:
    if isinstance(node, ast.Expression):
        return _non_negative(node.body, inputs)
    if isinstance(node, ast.BinOp) and isinstance(node.op, _NON_NEGATIVE_OPERATORS):
        return _non_negative(node.left, inputs) and _non_negative(node.right, inputs)
    if isinstance(node, ast.Constant):
        value = node.value
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    if isinstance(node, ast.Name):
        spec = inputs.get(node.id)
        return spec is not None and _input_is_non_negative(spec)
    return False


def lowest_value(definition: Any) -> float | None:
    """0.0 when the formula cannot give a negative value, else None (not known)."""
    try:
        tree = ast.parse(definition.formula.strip(), mode="eval")
    except SyntaxError:
        return None
    return 0.0 if _non_negative(tree, definition.inputs) else None
