"""What a KPI's ``status`` promises, checked across the catalog.

* ``certified`` is a promise about the number, so it cannot rest on a KPI nobody certified:
  a certified KPI whose formula uses a draft or deprecated KPI is an error.
* ``deprecated`` must say what to use instead (``replaced_by:``, an existing KPI id, not
  itself), and every formula that still uses it gets a warning naming the replacement.
* ``replaced_by`` on a KPI that is not deprecated is a warning: it would mean nothing.

Runs (:func:`deprecated_uses`) warn too when they compute a deprecated KPI.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ._model import Definition
from ._yamlio import Document
from .errors import Diagnostic, did_you_mean

__all__ = ["check_lifecycle", "deprecated_uses"]

Where = tuple[str | int, ...]


def _at(doc: Document, where: Where, key: str, code: str, message: str,
        severity: str = "error") -> Diagnostic:
    line, column = doc.position(where + (key,))
    return Diagnostic(doc.path, line, column, code, message, severity, key)


def check_lifecycle(items: Iterable[tuple[Definition, Document, Where]],
                    definitions: Mapping[str, Definition]) -> list[Diagnostic]:
    """The located lifecycle problems of ``items`` (each definition with its document and
    position), judged against every loaded definition."""
    out: list[Diagnostic] = []
    for definition, doc, where in items:
        kpi = definition.id
        replacement = definition.replaced_by
        if definition.status == "deprecated":
            if not replacement:
                out.append(_at(doc, where, "status", "deprecated-without-replacement",
                               f"deprecated KPI '{kpi}' needs replaced_by: the id of the KPI "
                               "to use instead"))
            elif replacement == kpi:
                out.append(_at(doc, where, "replaced_by", "replaced-by-itself",
                               f"KPI '{kpi}' cannot be replaced by itself"))
            elif replacement not in definitions:
                out.append(_at(doc, where, "replaced_by", "unknown-name",
                               f"replaced_by names unknown KPI '{replacement}'"
                               f"{did_you_mean(replacement, definitions)}"))
        elif replacement:
            out.append(_at(doc, where, "replaced_by", "replaced-by-not-deprecated",
                           f"KPI '{kpi}' has replaced_by but is {definition.status}: "
                           "replaced_by only applies with status: deprecated", "warning"))
        for used in definition.depends_on:
            other = definitions.get(used)
            if other is None:
                continue
            if definition.status == "certified" and other.status != "certified":
                out.append(_at(doc, where, "formula", "certified-uses-uncertified",
                               f"certified KPI '{kpi}' uses '{used}', which is {other.status}: "
                               f"certify '{used}' first, or leave '{kpi}' a draft"))
            elif other.status == "deprecated" and definition.status != "deprecated":
                out.append(_at(doc, where, "formula", "uses-deprecated",
                               f"KPI '{kpi}' uses deprecated KPI '{used}'"
                               f"{_instead(other)}", "warning"))
    return out


def _instead(definition: Definition) -> str:
    return f": use '{definition.replaced_by}' instead" if definition.replaced_by else ""


def deprecated_uses(definitions: Mapping[str, Any], computed: Iterable[str]) -> list[str]:
    """A warning for each deprecated KPI among ``computed``, naming its replacement."""
    out = []
    for kpi in computed:
        definition = definitions.get(kpi)
        if definition is not None and getattr(definition, "status", None) == "deprecated":
            out.append(f"KPI '{kpi}' is deprecated{_instead(definition)}")
    return out
