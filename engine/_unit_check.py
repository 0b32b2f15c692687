"""Check a catalog's units: each compiled formula's inferred unit (``_units``) against the
unit its KPI declares, as located diagnostics for ``load_catalog``.

``unit-mismatch`` (an error): the formula mixes units, or gives another unit than declared.
A formula whose unit no declaration names (clicks per euro is 1 per currency, money squared)
is not checked against its declaration, since none could be right.
"""

from __future__ import annotations

import ast
import math
from dataclasses import replace
from typing import Iterable, Mapping

from ._formula_check import FunctionSpec
from ._formulas import Formula
from ._model import Definition
from ._totals import input_of, is_total
from ._units import NUMBER, Unit, UnitError, declared_unit, infer_unit, input_unit
from ._yamlio import Document
from .errors import Diagnostic, shorten

__all__ = ["check_units", "formula_unit"]

CODE = "unit-mismatch"


def formula_unit(definition: Definition, formula: Formula, definitions: Mapping[str, Definition],
                 functions: Mapping[str, FunctionSpec], default_currency: str) -> Unit | None:
    """The inferred unit of ``definition``'s compiled ``formula``: inputs give their declared
    unit, KPIs (``definitions``) theirs, parameters are numbers. Raises :class:`UnitError`."""
    tree = formula.checked_tree
    if tree is None:
        return None
    currency = definition.currency or default_currency
    env: dict[str, Unit | None] = {name: NUMBER for name in definition.parameters}
    for name in formula.names:
        base = input_of(name) if is_total(name) else name  # a total keeps its input's unit
        if base in definition.inputs:
            env[name] = input_unit(definition.inputs[base], currency)
        elif name in definitions:
            env[name] = declared_unit(definitions[name], default_currency)
    return infer_unit(tree, formula.text.lstrip(), env, functions)


def check_units(items: Iterable[tuple[Definition, Formula, Document, tuple[str | int, ...]]],
                definitions: Mapping[str, Definition], functions: Mapping[str, FunctionSpec],
                default_currency: str) -> list[Diagnostic]:
    """One error per formula whose units contradict each other or the declared unit.

    ``items`` are (definition, compiled formula, its document, its path in the document)."""
    problems: list[Diagnostic] = []
    for definition, formula, doc, where in items:
        if formula.checked_tree is None:
            continue
        body = formula.text.lstrip()
        path = where + ("formula",)
        try:
            inferred = formula_unit(definition, formula, definitions, functions, default_currency)
        except UnitError as exc:
            diag = doc.diagnostic(path, CODE, f"{exc.message} in formula '{shorten(body)}'")
            problems.append(replace(diag, column=diag.column + _offset(formula.text, exc.node)))
            continue
        declared = declared_unit(definition, default_currency)
        if inferred is None or inferred.number or inferred.fits(declared) or (
                str(definition.unit) == "score" and not inferred.dims):
            continue
        if not _nameable(inferred):
            # no declaration could be right (clicks per euro is 1 per currency): nothing to
            # fix in the declaration, and a warning would be printed by every command
            continue
        problems.append(doc.diagnostic(
            path, CODE, f"formula gives {inferred} ({shorten(body, 60)}); declared "
            f"{declared}{_hint(inferred, declared)}"))
    return problems


def _nameable(unit: Unit) -> bool:
    """True if some declaration names ``unit`` up to scale: one base dimension to the power 1,
    or none (a ratio; 1 per currency, currency squared, seconds x currency have no name)."""
    return not unit.dims or (len(unit.dims) == 1 and unit.dims[0][1] == 1)


def _hint(inferred: Unit, declared: Unit) -> str:
    if inferred.dims == declared.dims and inferred.scale and declared.scale:
        factor = declared.scale / inferred.scale
        if math.isclose(factor, 100.0):
            return ": multiply by 100"
        if math.isclose(factor, 0.01):
            return ": divide by 100"
    return ""


def _offset(text: str, node: ast.AST) -> int:
    """Characters from the formula's start to ``node`` when it is on the first line."""
    if getattr(node, "lineno", None) != 1:
        return 0
    body = text.lstrip()
    first = body.split("\n", 1)[0]
    chars = len(first.encode("utf-8")[:getattr(node, "col_offset", 0)]
                .decode("utf-8", errors="replace"))
    return len(text) - len(body) + chars
