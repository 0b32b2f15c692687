"""Check the measures of a catalog: inputs a definition defines over raw rows (``agg``,
``field``, ``where``), its ``fields`` and its ``parameters``, as located diagnostics.

A measure is checked where it is written, so that a project binding fields later can only get
the definition's meaning: the condition passes the formula allow-list and names only fields and
parameters, an aggregation that needs a value names a declared field, a count is a count, a
parameter's default is one of its allowed values, and one input name is never defined as two
different measures in one catalog (two departments, one name, two numbers).
"""

from __future__ import annotations

from typing import Iterable

from ._conditions import compile_condition
from ._model import Definition
from ._yamlio import Document
from .errors import Diagnostic, FormulaError, shorten

__all__ = ["check_measures", "measure_text"]

_NEEDS_FIELD = frozenset({"sum", "avg", "min", "max", "first", "last", "count_distinct"})


def measure_text(agg: str, field: str | None, where: str | None) -> str:
    """How messages show a measure: ``count where score >= 9``, ``avg of score``."""
    text = agg if field is None else f"{agg} of {field}"
    return f"{text} where {where}" if where else text


def check_measures(items: Iterable[tuple[Definition, Document, tuple[str | int, ...]]]
                   ) -> list[Diagnostic]:
    """Every problem of the measures, fields and parameters of ``items`` (definition, its
    document, its path in the document)."""
    out: list[Diagnostic] = []
    seen: dict[str, tuple[str, Definition]] = {}
    for definition, doc, where in items:
        for name, parameter in definition.parameters.items():
            if parameter.allowed and parameter.default not in parameter.allowed:
                out.append(doc.diagnostic(where + ("parameters", name, "default"), "parameter",
                                          f"default {parameter.default:g} is not one of the allowed "
                                          f"values {', '.join(f'{v:g}' for v in parameter.allowed)}"))
        fields = {f: f for f in definition.fields}
        defaults = {p: spec.default for p, spec in definition.parameters.items()}
        for name, spec in definition.inputs.items():
            base = where + ("inputs", name)
            if spec.agg is None:
                for key, value in (("field", spec.field_name), ("where", spec.where)):
                    if value is not None:
                        out.append(doc.diagnostic(base + (key,), "measure",
                                                  f"'{key}' needs 'agg' (how the rows aggregate)"))
                continue
            if spec.field_name is not None and spec.field_name not in definition.fields:
                known = ", ".join(sorted(definition.fields)) or "none"
                out.append(doc.diagnostic(base + ("field",), "measure",
                                          f"'{spec.field_name}' is not one of the definition's "
                                          f"fields (declared: {known})"))
            if spec.field_name is None and spec.agg in _NEEDS_FIELD:
                out.append(doc.diagnostic(base + ("agg",), "measure",
                                          f"agg {spec.agg} needs a 'field' to aggregate"))
            if spec.agg in ("count", "count_distinct") and spec.unit not in (None, "count"):
                out.append(doc.diagnostic(base + ("unit",), "unit-mismatch",
                                          f"a {spec.agg} is a count, not {spec.unit}"))
            if spec.where is not None:
                try:
                    compile_condition(spec.where, fields, defaults)
                except FormulaError as exc:
                    line, column = doc.position(base + ("where",))
                    out.append(Diagnostic(doc.path, line, column, exc.code,
                                          f"{shorten(exc.message, 200)} in condition "
                                          f"'{shorten(spec.where)}'", "error",
                                          ".".join(str(p) for p in base + ("where",))))
            text = measure_text(spec.agg, spec.field_name, spec.where)
            earlier = seen.get(name)
            if earlier is None:
                seen[name] = (text, definition)
            elif earlier[0] != text:
                other = earlier[1]
                out.append(doc.diagnostic(base + ("agg",), "measure-conflict",
                                          f"input '{name}' is defined here as {text}, but "
                                          f"{other.path}:{other.line} ({other.id}) defines it as "
                                          f"{earlier[0]}: one name, one measure (rename one)"))
    return out
