"""What changed between two definition sets, KPI by KPI, and whether the change is allowed.

The comparison works on loaded :class:`Definition` objects (``Definition.to_dict()``), never on
the YAML text: moving a key, rewrapping a description or writing ``a/b`` as ``a / b`` is no
change. Every change is classified by what it does to whoever consumes the KPI:

* ``breaking``: the number itself means something else (formula, inputs, unit, currency,
  direction, an input's measure, a parameter, the id gone or renamed). Old values, dashboards
  and alerts cannot be compared with new ones, so it needs a ``version`` increase.
* ``behavioural``: the number is the same but what kpiforge does with it changes (thresholds,
  target, tolerance, alerts, status).
* ``cosmetic``: how the KPI is presented (labels, descriptions, tags, owner, category,
  threshold provenance).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ._model import Definition
from .errors import Diagnostic, shorten

__all__ = ["BEHAVIOURAL", "BREAKING", "COSMETIC", "Change", "KpiDiff", "changes", "compare", "summary"]

BREAKING, BEHAVIOURAL, COSMETIC = "breaking", "behavioural", "cosmetic"
_KIND_ORDER = (BREAKING, BEHAVIOURAL, COSMETIC)
# derived or bookkeeping: depends_on follows the formula, version is what a change is judged on
_IGNORED = frozenset({"id", "version", "path", "depends_on", "converted"})
_COSMETIC = frozenset({"name", "labels", "description", "descriptions", "tags", "owner",
                       "category", "objectives", "vanity", "replaced_by"})
_BREAKING = frozenset({"formula", "unit", "currency", "direction"})
_BEHAVIOURAL = frozenset({"thresholds", "target", "tolerance", "alerts", "status"})
_TEXT_KEYS = frozenset({"description", "descriptions"})

# where a change is: a KPI file path, line and column, given the definition and the key path
Locate = Callable[[Definition, tuple[str, ...]], tuple[str, int, int]]


@dataclass(frozen=True)
class Change:
    """One changed value of one KPI; ``old``/``new`` are None when the key was added/removed."""

    field: tuple[str, ...]
    kind: str
    old: Any = None
    new: Any = None

    @property
    def dotted(self) -> str:
        return ".".join(self.field)

    def describe(self) -> str:
        if self.old is None:
            return f"{self.dotted} added: {_show(self.new)}"
        if self.new is None:
            return f"{self.dotted} removed (was {_show(self.old)})"
        if self.field == ("formula",) and self.kind == COSMETIC:
            return f"formula rewritten, same expression: {_show(self.new)}"
        return f"{self.dotted}: {_show(self.old)} → {_show(self.new)}"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.dotted, "kind": self.kind, "old": self.old, "new": self.new,
                "message": self.describe()}


@dataclass(frozen=True)
class KpiDiff:
    """Everything that changed about one KPI id, and the verdict as a located diagnostic.

    ``state`` is ``changed``, ``added``, ``removed`` or ``renamed`` (removed here, present
    under ``renamed_to`` there)."""

    kpi: str
    state: str
    changes: tuple[Change, ...]
    diagnostic: Diagnostic
    old_version: int | None = None
    new_version: int | None = None
    renamed_to: str | None = None

    @property
    def kind(self) -> str:
        """The worst kind of change: what the KPI's change as a whole is called."""
        if self.state in ("removed", "renamed"):
            return BREAKING
        if self.state == "added":
            return "added"
        return next(k for k in _KIND_ORDER if any(c.kind == k for c in self.changes))

    def to_dict(self) -> dict[str, Any]:
        d = self.diagnostic
        return {"kpi": self.kpi, "state": self.state, "kind": self.kind,
                "old_version": self.old_version, "new_version": self.new_version,
                "renamed_to": self.renamed_to, "severity": d.severity, "code": d.code,
                "message": d.message, "path": d.path, "line": d.line, "column": d.column,
                "changes": [c.to_dict() for c in self.changes]}


def _show(value: Any) -> str:
    if isinstance(value, str):
        return shorten(value, 120)
    return shorten(json.dumps(value, ensure_ascii=False, sort_keys=True), 120)


def _data(definition: Definition) -> dict[str, Any]:
    data = definition.to_dict()
    # to_dict leaves out what is not a number's meaning; a diff needs all that is written
    if definition.alerts is not None:
        data["alerts"] = json.loads(json.dumps(dict(definition.alerts), default=str))
    return {k: v for k, v in data.items() if k not in _IGNORED}


def _same_expression(old: str, new: str) -> bool:
    try:
        return ast.dump(ast.parse(old.strip(), mode="eval")) == ast.dump(ast.parse(new.strip(), mode="eval"))
    except SyntaxError:  # the loader accepted both, so this is only a guard
        return old.strip() == new.strip()


def _classify(path: tuple[str, ...], old: Any, new: Any) -> str:
    head = path[0]
    if head in _COSMETIC:
        return COSMETIC
    if head in _BREAKING:
        return BREAKING
    if head == "thresholds" and path[1:2] == ("source",):
        return COSMETIC  # where a figure comes from is documentation, not the figure
    if head in _BEHAVIOURAL:
        return BEHAVIOURAL
    if head in ("inputs", "fields", "parameters"):
        sub = path[2] if len(path) > 2 else None
        if sub in _TEXT_KEYS:
            return COSMETIC
        if sub == "range":
            return BEHAVIOURAL  # only which values are refused as invalid
        if sub == "aliases":  # a project still providing a dropped alias breaks; a new one is harmless
            return BREAKING if set(old or ()) - set(new or ()) else COSMETIC
        if head == "fields" and sub is None and old is None:
            return COSMETIC  # a field nothing uses yet
        return BREAKING
    return BEHAVIOURAL  # a key this list does not know yet: not silently cosmetic


def _walk(old: Any, new: Any, path: tuple[str, ...], out: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            _walk(old.get(key), new.get(key), path + (str(key),), out)
        return
    if old == new or (old in (None, [], {}, "") and new in (None, [], {}, "")):
        return
    if path == ("formula",) and _same_expression(str(old), str(new)):
        out.append(Change(path, COSMETIC, old, new))
        return
    out.append(Change(path, _classify(path, old, new), None if old in ([], {}, "") else old,
                      None if new in ([], {}, "") else new))


def changes(old: Definition, new: Definition) -> tuple[Change, ...]:
    """Every changed value between two definitions of one KPI, in key order."""
    out: list[Change] = []
    _walk(_data(old), _data(new), (), out)
    return tuple(sorted(out, key=lambda c: _KIND_ORDER.index(c.kind)))  # stable: key order within


def _substance(definition: Definition) -> tuple[Any, ...]:
    """What a renamed KPI keeps: the same expression of the same inputs, unit and direction."""
    data = _data(definition)
    try:
        formula = ast.dump(ast.parse(definition.formula.strip(), mode="eval"))
    except SyntaxError:
        formula = definition.formula
    inputs = {n: (s.get("unit"), s.get("agg"), s.get("field"), s.get("where"))
              for n, s in data["inputs"].items()}
    return formula, json.dumps(inputs, sort_keys=True), data["unit"], data["direction"]


def _default_locate(definition: Definition, path: tuple[str, ...]) -> tuple[str, int, int]:
    return definition.path, definition.line, 1


def compare(old: Mapping[str, Definition], new: Mapping[str, Definition], *,
            locate_old: Locate = _default_locate,
            locate_new: Locate = _default_locate) -> list[KpiDiff]:
    """One :class:`KpiDiff` per KPI id that differs, in id order. A breaking change without a
    ``version`` increase, a lower version and the removal of a KPI that was not deprecated
    first are errors; a versioned breaking change and a removal after deprecation warnings;
    the rest notes."""
    removed = [k for k in old if k not in new]
    added = [k for k in new if k not in old]
    renamed: dict[str, str] = {}
    for kpi in removed:
        match = [a for a in added if a not in renamed.values()
                 and _substance(new[a]) == _substance(old[kpi])]
        if len(match) == 1:  # two candidates: which one it became is a guess, so neither
            renamed[kpi] = match[0]
    out: list[KpiDiff] = []
    for kpi in sorted(set(old) | set(new)):
        if kpi in old and kpi in new:
            found = changes(old[kpi], new[kpi])
            if found:
                out.append(_changed(kpi, old[kpi], new[kpi], found, locate_new))
        elif kpi in old:
            out.append(_removed(kpi, old[kpi], renamed.get(kpi), new, locate_old))
        elif kpi not in renamed.values():
            d = new[kpi]
            path, line, column = locate_new(d, ("id",))
            out.append(KpiDiff(kpi, "added", (), Diagnostic(
                path, line, column, "kpi-added", f"KPI '{kpi}' added (version {d.version})",
                "note"), None, d.version))
    return out


def _changed(kpi: str, old: Definition, new: Definition, found: tuple[Change, ...],
             locate: Locate) -> KpiDiff:
    breaking = [c for c in found if c.kind == BREAKING]
    first = breaking[0] if breaking else found[0]
    path, line, column = locate(new, first.field)
    kinds = [k for k in _KIND_ORDER if any(c.kind == k for c in found)]
    what = ", ".join(dict.fromkeys(c.dotted for c in (breaking or found)))
    versions = f"version {old.version} → {new.version}"
    if new.version < old.version:
        severity, code, message = ("error", "version-decreased",
                                   f"KPI '{kpi}': version went down ({versions})")
    elif breaking and new.version == old.version:
        severity, code, message = (
            "error", "breaking-unversioned",
            f"KPI '{kpi}': breaking change ({what}) without a version increase: "
            f"raise version to {old.version + 1}")
    elif breaking:
        severity, code, message = ("warning", "breaking",
                                   f"KPI '{kpi}': breaking change ({what}), {versions}")
    else:
        severity, code, message = ("note", kinds[0], f"KPI '{kpi}': {kinds[0]} change ({what})")
    # no field on the verdict: the message names them all, and str() would repeat the first
    return KpiDiff(kpi, "changed", found, Diagnostic(path, line, column, code, message, severity),
                   old.version, new.version)


def _removed(kpi: str, old: Definition, renamed_to: str | None, new: Mapping[str, Definition],
             locate: Locate) -> KpiDiff:
    path, line, column = locate(old, ("id",))
    what = f"renamed to '{renamed_to}'" if renamed_to else "removed"
    if old.status == "deprecated":
        severity, code = "warning", "kpi-removed"
        message = f"KPI '{kpi}' {what} after its deprecation; whatever still uses it breaks"
    else:
        severity, code = "error", "kpi-removed"
        replacement = renamed_to or getattr(old, "replaced_by", None) or "NEW_ID"
        message = (f"KPI '{kpi}' {what} without being deprecated first: keep it with "
                   f"status: deprecated and replaced_by: {replacement} for a release")
    state = "renamed" if renamed_to else "removed"
    change = Change(("id",), BREAKING, kpi, renamed_to)
    return KpiDiff(kpi, state, (change,), Diagnostic(path, line, column, code, message, severity),
                   old.version, new[renamed_to].version if renamed_to else None, renamed_to)


def summary(diffs: list[KpiDiff]) -> dict[str, int]:
    """How many KPIs changed, by kind, and how many verdicts are errors and warnings."""
    counts = {k: 0 for k in ("breaking", "behavioural", "cosmetic", "added")}
    for d in diffs:
        counts[d.kind] += 1
    counts["errors"] = sum(d.diagnostic.severity == "error" for d in diffs)
    counts["warnings"] = sum(d.diagnostic.severity == "warning" for d in diffs)
    return counts
