"""One id, one definition: controlled extension, and duplicates that say what differs.

A KPI may ``extends:`` another one (``ctr``, or ``kpiforge:standard/ctr`` to name the pack it
must come from). It keeps the base's formula, inputs, unit and direction and may change only
:data:`EXTENSIBLE`; it then replaces the base. Two definitions of one id that are not an
extension are refused with the field-by-field difference, so two departments never compute
one KPI two ways under one name without noticing; an identical copy is told to use
``extends`` instead.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ._model import Definition
from ._packs import Pack
from ._yamlio import Document
from .errors import Diagnostic, did_you_mean, shorten

__all__ = ["COMPARED", "EXTENSIBLE", "Entry", "Extension", "collect_ids"]

#: what an extension may set: how a KPI is judged and described, never how it is computed
EXTENSIBLE = ("thresholds", "target", "tolerance", "alerts", "name", "labels", "description",
              "descriptions", "owner", "tags")
# merged language by language: an extension relabelling ``en`` keeps the base's ``fr``
_BY_LANGUAGE = ("labels", "descriptions")
#: what two definitions of one id are compared on: what they compute and how they judge it
COMPARED = ("formula", "inputs", "fields", "parameters", "unit", "currency", "direction", "target",
            "tolerance", "thresholds", "alerts")
_CHANGES = "thresholds, target, tolerance, alerts, labels, descriptions, owner and tags"

Where = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """One schema-valid KPI as written: its document, its place in it, its data."""

    doc: Document
    where: Where
    data: Mapping[str, Any]
    file_currency: str | None


@dataclass(frozen=True, slots=True)
class Extension:
    """Where an extended KPI's base comes from and which fields the extension changed."""

    base: str
    base_path: str
    pack: str | None
    version: str | None
    path: str
    changed: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "base_path": self.base_path, "pack": self.pack,
                "pack_version": self.version, "path": self.path, "changed": list(self.changed)}


def _line(entry: Entry) -> str:
    return f"{entry.doc.path}:{entry.doc.position(entry.where + ('id',))[0]}"


def _who(entry: Entry, pack: Pack | None) -> str:
    """`` (owner sales, pack acme:sales 1.2.0)``, or what of it is known."""
    parts = [f"owner {entry.data['owner']}"] if entry.data.get("owner") else []
    if pack is not None:
        parts.append(f"pack {pack.name} {pack.version}".rstrip())
    return f" ({', '.join(parts)})" if parts else ""


def _leaves(value: Any, prefix: str) -> dict[str, str]:
    """``value`` flattened to dotted keys, descriptions left out: they do not change a value."""
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, item in value.items():
            if key not in ("description", "descriptions"):
                out.update(_leaves(item, f"{prefix}.{key}"))
        return out
    return {prefix: _text(value)}


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _canonical(name: str, value: Any) -> Any:
    """``value`` as compared: numbers by value (3 is 3.0), a formula by its syntax tree
    written back (``clicks/impressions*100`` is ``clicks / impressions * 100``)."""
    if name == "formula" and isinstance(value, str):
        try:
            return ast.unparse(ast.parse(value.strip(), mode="eval"))
        except (SyntaxError, ValueError, RecursionError):  # reported elsewhere; compared as written
            return value
    if name == "thresholds" and isinstance(value, Mapping):
        # where the figures come from documents them; two copies judging alike are alike
        value = {key: item for key, item in value.items() if key != "source"}
    if isinstance(value, Mapping):
        return {key: _canonical(str(key), item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical("", item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def differences(this: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """What differs between two definitions of one id, field by field (``this`` first)."""
    found = []
    this = {k: _canonical(k, v) for k, v in this.items() if k in COMPARED}
    other = {k: _canonical(k, v) for k, v in other.items() if k in COMPARED}
    for name in COMPARED:
        if name not in this and name not in other:
            continue
        if name not in this or name not in other:  # one side has none: show the other whole
            mine = {name: _text(this[name])} if name in this else {}
            theirs = {name: _text(other[name])} if name in other else {}
        elif (name == "inputs" and isinstance(this[name], Mapping) and isinstance(other[name], Mapping)
              and set(this[name]) != set(other[name])):
            # other names: what each side's inputs are says it; then the shared ones, in detail
            here, there = set(this[name]), set(other[name])
            found.append(f"inputs: {', '.join(sorted(here - there)) or 'none'} only here, "
                         f"{', '.join(sorted(there - here)) or 'none'} only there")
            shared = {key: this[name][key] for key in here & there}
            mine = _leaves(shared, name)
            theirs = _leaves({key: other[name][key] for key in shared}, name)
        elif isinstance(this[name], Mapping) and isinstance(other[name], Mapping):
            mine, theirs = _leaves(this[name], name), _leaves(other[name], name)
        else:  # a word against a mapping (unit: ratio, unit: {currency: EUR}): whole
            mine, theirs = {name: _text(this[name])}, {name: _text(other[name])}
        for key in sorted(set(mine) | set(theirs), key=lambda k: (k.count("."), k)):
            a, b = mine.get(key, "absent"), theirs.get(key, "absent")
            if a != b:
                found.append(f"{key}: {shorten(a, 60)} here, {shorten(b, 60)} there")
    return found


def _duplicate(entry: Entry, first: Entry, pack_of: Callable[[Document], Pack | None],
               file_of: Callable[[Document], Path | None]) -> Diagnostic:
    kpi_id = entry.data["id"]
    there = f"{_line(first)}{_who(first, pack_of(first.doc))}"
    here = f"here{_who(entry, pack_of(entry.doc))}"
    found = differences(entry.data, first.data)
    if not found:
        mine, theirs = file_of(entry.doc), file_of(first.doc)
        # one KPI per file on both sides: the files themselves can be compared
        same_bytes = (mine is not None and theirs is not None and entry.where == first.where == ()
                      and mine.read_bytes() == theirs.read_bytes())
        what = "a byte-for-byte copy of" if same_bytes else "an identical copy of the one in"
        message = (f"KPI id '{kpi_id}' is {what} {there}: remove this copy, or keep only the "
                   f"fields you change under `extends: {kpi_id}`")
    else:
        message = (f"KPI id '{kpi_id}' is defined {here} and in {there}, differently: "
                   f"{'; '.join(found)}. Give one of them another id, or make this one an "
                   f"extension (`extends: {kpi_id}`), which may change only {_CHANGES}")
    return entry.doc.diagnostic(entry.where + ("id",), "duplicate-id", message)


def _target(value: str) -> tuple[str | None, str]:
    pack, _, kpi_id = value.rpartition("/")
    return pack or None, kpi_id


def _merged(base: Mapping[str, Any], extension: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extension.items():
        if key in _BY_LANGUAGE and isinstance(base.get(key), Mapping):
            merged[key] = {**base[key], **value}
        elif key in EXTENSIBLE:
            merged[key] = value
    return merged


def collect_ids(entries: Iterable[Entry], *, build: Callable[[Entry], Definition],
                pack_of: Callable[[Document], Pack | None],
                file_of: Callable[[Document], Path | None], loaded_packs: Iterable[str],
                diagnostics: list[Diagnostic]
                ) -> tuple[dict[str, tuple[Definition, Document, Where]], dict[str, Extension]]:
    """Every KPI by id, extensions applied, with a diagnostic for each duplicate and each
    extension that cannot apply; and the provenance of each extended KPI."""
    plain: dict[str, Entry] = {}
    built: dict[str, tuple[Definition, Document, Where]] = {}
    pending: list[Entry] = []
    for entry in entries:
        if "extends" in entry.data:
            pending.append(entry)
            continue
        kpi_id = entry.data["id"]
        if kpi_id in plain:
            diagnostics.append(_duplicate(entry, plain[kpi_id], pack_of, file_of))
            continue
        plain[kpi_id] = entry
        built[kpi_id] = (build(entry), entry.doc, entry.where)

    extended: dict[str, tuple[Entry, Extension]] = {}
    packs = set(loaded_packs)
    for entry in pending:
        doc, where, data = entry.doc, entry.where, entry.data
        pack_name, base_id = _target(data["extends"])
        problems = [doc.diagnostic(where + (key,), "extension-field",
                                   f"{key} cannot change in an extension; define a new KPI id",
                                   at_key=True)
                    for key in data if key not in EXTENSIBLE + ("id", "extends")]
        if data.get("id", base_id) != base_id and base_id in plain:
            problems.append(doc.diagnostic(where + ("id",), "extension-id", (
                f"an extension keeps the id of the KPI it extends ('{base_id}'); to add a KPI "
                f"next to it, define a new KPI id without extends")))
        base = plain.get(base_id)
        base_pack = pack_of(base.doc) if base is not None else None
        if pack_name is not None and pack_name not in packs:
            problems.append(doc.diagnostic(where + ("extends",), "unknown-reference", (
                f"extends a KPI of pack '{pack_name}', which is not loaded; add it to the "
                f"definitions")))
        elif base is None:
            hint = did_you_mean(base_id, sorted(plain))
            problems.append(doc.diagnostic(where + ("extends",), "unknown-name",
                                           f"extends unknown KPI '{base_id}'{hint}"))
        elif pack_name is not None and (base_pack is None or base_pack.name != pack_name):
            problems.append(doc.diagnostic(where + ("extends",), "extension-base", (
                f"extends '{base_id}' of pack '{pack_name}', but the loaded '{base_id}' is "
                f"{_line(base)}{_who(base, base_pack)}")))
        elif base_id in extended:
            problems.append(doc.diagnostic(where + ("extends",), "duplicate-id", (
                f"KPI '{base_id}' is already extended in {_line(extended[base_id][0])}; one "
                f"extension per KPI in a definition set")))
        diagnostics.extend(problems)
        if problems or base is None:  # (base is None only with a problem: for type checkers)
            continue
        merged = _merged(base.data, data)
        merged["id"] = base_id
        # the base's folder names its category, not the extension's
        merged["category"] = built[base_id][0].category
        definition = build(Entry(doc, where, merged, base.file_currency))
        built[base_id] = (definition, doc, where)
        changed = tuple(k for k in data if k in EXTENSIBLE)
        extended[base_id] = (entry, Extension(
            base_id, base.doc.path, base_pack.name if base_pack else None,
            base_pack.version or None if base_pack else None, doc.path, changed))
    return built, {kpi_id: extension for kpi_id, (_, extension) in extended.items()}
