"""Why a value is null (:class:`Reason`), and the constructs that stop a poison.

Shared by the fast evaluation paths (``_formulas``, ``_formula_lower``, ``_formula_interp``),
the explainer (``_explain``, which states the rule), the engine (reasons through dependencies)
and the run (``no data`` and the like), so every path names a failure the same way. Code reads
a reason's ``code`` and ``subject``, never its text: the text is for people and may be reworded.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any, Mapping, Sequence, cast

if TYPE_CHECKING:
    import numpy as np

from .errors import ArgumentError



class Reason(str):
    """Why a value is null: it reads, prints and compares as its text (``missing input:
    clicks``), and carries a stable ``code`` (one of :data:`REASON_CODES`), the input, KPI or
    source it is about (``subject``, else None) and, for ``depends_on``, the root ``cause``.

    A ``str`` subclass, so the reason columns of results, JSON and CSV stay plain text; it has
    no ``__slots__`` because ``str`` subclasses cannot have them.
    """

    code: str
    subject: str | None
    cause: "Reason | None"

    def __new__(cls, code: str, text: str, subject: str | None = None,
                cause: "Reason | None" = None) -> "Reason":
        if code not in REASON_CODES:
            raise ValueError(f"unknown reason code {code!r}")
        self = super().__new__(cls, text)
        self.code, self.subject, self.cause = code, subject, cause
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Reason, (self.code, str(self), self.subject, self.cause))

    def __repr__(self) -> str:
        return f"Reason({self.code!r}, {str(self)!r})"


#: Every reason code, with what it means. Stable: tools may match on them.
REASON_CODES: Mapping[str, str] = {
    "missing_input": "an input the formula needs has no value (subject: the input)",
    "input_not_finite": "an input is infinite (subject: the input)",
    "out_of_range": "an input is outside its declared range; the text suggests the likely "
                    "mistake (subject: the input)",
    "division_by_zero": "the formula divides by zero",
    "math_domain": "a function got a value outside its domain (log of a negative, ...)",
    "not_finite": "the result (or a step of it) is not a finite number",
    "invalid_argument": "a function refused an argument (round digits out of range, ...)",
    "evaluation_error": "a function raised an unexpected error",
    "depends_on": "a KPI the formula uses is null (subject: that KPI; cause: its reason)",
    "no_data": "none of the KPI's inputs has a row in this period and slice",
    "no_source": "no source of the project provides an input (subject: the first one)",
    "not_splittable": "a source cannot be split by the requested dimensions (subject: it)",
    "not_additive": "a non-additive input (a distinct count per key and period) would be summed "
                    "across a key or to another grain (subject: the input)",
}


def missing_input(name: str) -> Reason:
    return Reason("missing_input", f"missing input: {name}", name)


def input_not_finite(name: str) -> Reason:
    return Reason("input_not_finite", f"input is not finite: {name}", name)


def depends_on(dep: str, upstream: str) -> Reason:
    """The reason of a KPI null because the KPI ``dep`` it uses is null. It names the root
    cause once (``depends on kpi_0: missing input: x``), however long the chain: an
    ``upstream`` that is itself a dependency reason is returned as it is."""
    if isinstance(upstream, Reason) and upstream.code == "depends_on":
        return upstream
    cause = upstream if isinstance(upstream, Reason) else Reason("evaluation_error", upstream)
    return Reason("depends_on", f"depends on {dep}: {upstream}", dep, cause)


def reason_objects(table: Sequence[Any]) -> np.ndarray:
    """A table of reasons (None at code 0) as an object array, to index with reason codes.
    Filled item by item: ``np.array``/``np.full`` may turn a Reason into a plain str."""
    import numpy as np  # here: compiling a formula needs this module, not numpy

    out = np.empty(len(table), dtype=object)
    for i, reason in enumerate(table):
        out[i] = reason
    return out


REASON_DIVISION = Reason("division_by_zero", "division by zero")
REASON_NOT_FINITE = Reason("not_finite", "result is not finite")
REASON_DOMAIN = Reason("math_domain", "math domain error")

# builtins with a structural meaning here; looked up by identity so that a plugin's function
# of the same name never gets their treatment
_HANDLERS = ("coalesce", "safe_div", "where")


def builtin(name: str) -> Any:
    from kpiforge.plugins import functions

    return {"coalesce": functions.coalesce, "safe_div": functions.safe_div,
            "where": functions.where, "min": functions.min_, "max": functions.max_,
            "abs": functions.abs_, "round": functions.round_, "sqrt": functions.sqrt,
            "log": functions.log, "exp": functions.exp, "clip": functions.clip}[name]


def reason_of(exc: BaseException | None) -> Reason:
    """The null reason for an exception a formula operation or function raised."""
    if isinstance(exc, ArgumentError):
        return Reason("invalid_argument", str(exc))
    if isinstance(exc, ZeroDivisionError):
        return REASON_DIVISION
    if isinstance(exc, OverflowError):
        return REASON_NOT_FINITE
    if isinstance(exc, ValueError) and "domain" in str(exc):
        return REASON_DOMAIN
    if exc is None:
        return REASON_NOT_FINITE
    return Reason("evaluation_error", f"{type(exc).__name__}: {exc}")


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
