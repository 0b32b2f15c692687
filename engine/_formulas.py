"""Compile and evaluate KPI formulas: ``compile_formula`` and the :class:`Formula` it gives.

Formulas come from YAML files and are untrusted. Two independent layers keep them contained:

1. Our own AST allow-list, checked at compile time (``_formula_check``): numbers, names,
   arithmetic, comparisons, ``and``/``or``/``not``, ``a if c else b`` and positional calls to
   registered functions. Everything else is rejected with a :class:`FormulaError` that names
   the construct and its column, before anything runs.
2. asteval in its minimal configuration with every node handler we do not emit switched off,
   run against a symbol table that holds *only* the functions the formula calls and its inputs
   (``_formula_interp``, which also lists the asteval traps handled).

What a formula gives when something in it is not a number -- one rule for scalars and arrays:

* A value that is not a finite number -- a missing input, a division by zero, a math domain
  error (``sqrt(-1)``, ``log(0)``), an overflow, a function argument out of its range
  (``round(x, 99)``) -- *poisons* everything computed from it: the result is null with that
  reason. Nothing turns a poison back into a number: ``min(1 / 0, 5)``, ``clip(1 / 0, 0, 1)``,
  ``(1 / 0) ** -1``, ``1 / 0 > 0`` and ``x > 5`` with ``x`` missing are all null.
* Only the constructs made to handle it stop a poison: ``coalesce`` (the first argument that
  is not poisoned), ``safe_div`` (its default when an operand is poisoned, the divisor is 0 or
  the quotient is not finite), the branch not chosen by ``a if c else b`` / ``where(c, a, b)``,
  and what ``and`` / ``or`` / a chained comparison never reach (``y != 0 and x / y > 1``).
* The reason is the first missing input, in alphabetical order, among the inputs the formula
  always needs (outside those constructs); otherwise the first failure in evaluation order.
* A plugin's function is called only with finite numbers; a poisoned argument poisons the call.

Three lowered trees are kept per formula, made on its first evaluation by ``_formula_run``,
which holds the numpy and asteval half (compiling, all ``kpiforge validate`` does, needs
neither). The scalar tree keeps ``if``/``and``/``or`` lazy and uses Python floats; the array trees (plain, and in-place for big arrays) rewrite those
constructs into elementwise internal calls so one run covers every slice. Both are fast paths:
guards (``_guards``) make sure a poisoned slice ends failed or non-finite, never laundered
into a number. Every slice that failed is then evaluated again by ``_explain.explain_codes`` --
vectorised over the failed slices, for scalars and arrays alike -- which implements the rule
above exactly and gives the value (a handler may rescue it) or the reason. Scalar and array
evaluation therefore agree on value and reason by construction
(``tests/test_formulas_properties.py`` checks it on random formulas).
"""

from __future__ import annotations

import ast
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ._evaluation import Evaluation
from ._formula_check import (MAX_DEPTH, MAX_FORMULA_LENGTH, MAX_NODES, FunctionSpec,
                             check_formula, column_of)
from ._reasons import always_needed
from ._totals import TOTAL, rewrite_totals, total_key

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Evaluation",
    "Formula",
    "FunctionSpec",
    "MAX_DEPTH",
    "MAX_FORMULA_LENGTH",
    "MAX_NODES",
    "compile_formula",
    "default_functions",
    "function_specs",
]

# ._formula_run (numpy, asteval), imported on the first evaluation: compiling needs neither
_run: ModuleType | None = None
# what tests and tools read here from before the split, resolved in ._formula_run
_MOVED = ("_ARRAY_INTERNALS", "_INPLACE_FROM", "_SCALAR_INTERNALS", "_interpreter")


def _runtime() -> ModuleType:
    global _run
    from . import _formula_run

    _run = _formula_run
    return _formula_run


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(_runtime(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def function_specs(registrations: Mapping[str, Any]) -> dict[str, FunctionSpec]:
    """Turn the plugin manager's ``Registration`` table (``Plugins.functions``) into specs."""
    out: dict[str, FunctionSpec] = {}
    for name, reg in registrations.items():
        if isinstance(reg, FunctionSpec):
            out[name] = reg
        else:
            out[name] = FunctionSpec(name, reg.obj, reg.min_args, reg.max_args, reg.doc)
    return out


def default_functions() -> dict[str, FunctionSpec]:
    """The functions registered by the default plugins (built-ins + entry points), loaded now."""
    from ._plugins import load_plugins

    return function_specs(load_plugins().functions)


# --------------------------------------------------------------------------- Formula


class Formula:
    """A compiled formula. Immutable; one instance may be evaluated from many threads."""

    __slots__ = ("text", "names", "functions", "_sorted", "_scalar_node", "_array_node",
                 "_big_node", "_scalar_base", "_array_base", "_tree", "_needed", "_specs")

    text: str
    names: frozenset[str]
    functions: frozenset[str]
    _sorted: tuple[str, ...]
    # set by ._formula_run.prepare on the first evaluation (unset until then)
    _scalar_node: ast.expr
    _array_node: ast.expr
    _big_node: ast.expr
    _scalar_base: dict[str, Any]  # the symbol table before inputs: functions the formula calls
    _array_base: dict[str, Any]
    _tree: ast.expr | None
    _needed: tuple[str, ...]
    _specs: dict[str, FunctionSpec]
    checked_tree = property(lambda self: self._tree, doc="The allow-listed tree (for _units)")

    def __init__(self, text: str, names: Iterable[str], called: Iterable[str],
                 scalar_node: ast.expr | None, array_node: ast.expr | None,
                 big_node: ast.expr | None, functions: Mapping[str, FunctionSpec],
                 tree: ast.expr | None = None):
        """``compile_formula`` passes no nodes (they are lowered from ``tree`` when first
        needed); a hand-built Formula (tests) passes all three and may omit ``tree``."""
        names = frozenset(names)
        called = frozenset(called)
        needed = tuple(sorted(always_needed(tree, functions) & names)) if tree is not None \
            else tuple(sorted(names))
        for attr, value in (("text", text), ("names", names), ("functions", called),
                            ("_sorted", tuple(sorted(names))), ("_tree", tree),
                            ("_needed", needed),
                            ("_specs", {name: functions[name] for name in called})):
            object.__setattr__(self, attr, value)
        if scalar_node is not None and array_node is not None and big_node is not None:
            for attr, node in (("_scalar_node", scalar_node), ("_array_node", array_node),
                               ("_big_node", big_node)):
                object.__setattr__(self, attr, node)
            (_run or _runtime()).prepare(self)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Formula is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Formula is immutable")

    def __repr__(self) -> str:
        return f"Formula({self.text!r})"

    def __reduce__(self) -> Any:  # the nodes hold numpy scalars; recompiling is simpler
        raise TypeError("Formula objects cannot be pickled; pickle the text and recompile")

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, namespace: Mapping[str, Any], size: int | None = None) -> Evaluation:
        """Evaluate on scalars (``size is None`` and no ndarray values) or on arrays.

        Names absent from ``namespace`` and None values are missing (NaN). Data problems give
        a null value with a reason; only programming errors (text, complex numbers or dates
        as inputs, arrays of unequal length) raise :class:`InputError`.
        """
        return (_run or _runtime()).evaluate(self, namespace, size)

    def _array_codes(self, namespace: Mapping[str, Any], size: int | None,
                     guarded: bool = True) -> tuple[np.ndarray, np.ndarray | None, list[Any]]:
        """(value, reason codes or None when no slice is null, reasons by code: 0 is None).
        ``guarded=False``: the caller entered ``np.errstate(all="ignore")`` for many formulas."""
        return (_run or _runtime()).array_codes(self, namespace, size, guarded)



# --------------------------------------------------------------------------- compile


def compile_formula(text: str, *, functions: Mapping[str, FunctionSpec]) -> Formula:
    """Check ``text`` against the allow-list and prepare it for evaluation (``total(x)``
    becomes the input ``total(x)``, see ``_totals``). Raises :class:`FormulaError` with
    ``code`` one of ``syntax``, ``forbidden``, ``unknown-function``, ``arity``, ``too-complex``,
    ``total`` and a 1-based ``column``."""
    tree, names, called = check_formula(text, {**functions, "total": TOTAL})
    tree, totals = rewrite_totals(tree, column_of(text))
    names, called = names | {total_key(t) for t in totals}, called - {"total"}
    return Formula(text, names, called, None, None, None, functions, tree)
