"""Loading definition sets: files and folders -> validated, compiled :class:`Definition` objects.

Every problem in every file is collected as a :class:`Diagnostic`; nothing stops at the first
error, and one bad file never hides the others. Semantic checks run on what did load: duplicate
ids, unknown names, unused inputs, cycles, threshold order, objectives.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from ._defpaths import (OBJECTIVES_FILE, STANDARD_CATALOG, Packs, known_packs,
                        bundled_definitions_dir, discover, display_path, pack_of)
from ._extends import Entry, Extension, collect_ids
from ._formulas import Formula, FunctionSpec, compile_formula
from ._graph import find_cycles, topological_order
from ._definition_build import build_definition, build_objective
from ._model import Definition, Objective
from ._objectives_check import check_targets
from ._baselines import anomaly_problem
from ._threshold_order import threshold_order_problem
from ._lifecycle_check import check_lifecycle
from ._measure_check import check_measures
from ._totals import input_of, is_total
from ._unit_check import check_units
from ._verdicts import Verdicts
from ._yamlio import Document, load_document
from .errors import (MAX_DIAGNOSTICS_PER_FILE, DefinitionError, Diagnostic, FormulaError,
                     did_you_mean, limit_per_file, shorten)

__all__ = ["Catalog", "OBJECTIVES_FILE", "bundled_definitions_dir", "discover", "load_catalog"]

DEFAULT_CURRENCY = "EUR"
MIN_KPIS_PER_OBJECTIVE, MAX_KPIS_PER_OBJECTIVE = 5, 7  # the guide's "5 to 7 KPIs per objective"


@dataclass(frozen=True)
class Catalog:
    """Everything a definition set holds once loaded and checked."""

    definitions: Mapping[str, Definition]
    formulas: Mapping[str, Formula]
    objectives: Mapping[str, Objective]
    order: tuple[str, ...]
    diagnostics: tuple[Diagnostic, ...] = ()
    test_files: tuple[Path, ...] = ()
    # extended KPI id -> where its base comes from and what the extension changed
    extensions: Mapping[str, Extension] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if not d.is_error)


def _diag(doc: Document, path: tuple[str | int, ...], code: str, message: str,
          severity: str = "error", *, key: bool = False) -> Diagnostic:
    line, column = doc.key_position(path) if key else doc.position(path)
    return Diagnostic(doc.path, line, column, code, message, severity, _dotted(path))


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _validate(doc: Document, schema: Any, base_path: tuple[str | int, ...] = ()) -> list[Diagnostic]:
    # imported here: with every file's verdict cached (._verdicts), jsonschema is not needed
    from ._schema import validate

    return validate(doc, schema, base_path=base_path)


@functools.lru_cache(maxsize=None)
def _kpi_validator(kind: str) -> Any:
    """The published schema re-rooted at one KPI, or at a `kpis:` file whose items are checked
    one by one, so errors name the field instead of a failed oneOf and one bad KPI of a list
    does not hide the others. Built once: a file may hold thousands of KPIs."""
    from ._schema import compile_schema, load_schema

    full = _inline_refs(load_schema("kpi.schema.json"))
    base = {k: v for k, v in full.items() if k not in ("oneOf", "title", "description")}
    if kind == "single":
        return compile_schema({**base, "$ref": "#/$defs/kpi"})
    file_schema = full["oneOf"][1]
    any_items = {k: v for k, v in file_schema["properties"]["kpis"].items() if k != "items"}
    return compile_schema({**base, **file_schema,
                           "properties": {**file_schema["properties"], "kpis": any_items}})


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with each local ``$ref`` replaced by what it names (the KPI schema has no
    recursion): resolving refs was a third of the cost of validating a KPI."""
    defs = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/") and len(node) == 1:
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {k: inline(v) for k, v in schema.items()}


@dataclass
class _Loading:
    functions: Mapping[str, FunctionSpec]
    default_currency: str
    display: Any
    diagnostics: list[Diagnostic] = field(default_factory=list)
    verdicts: Verdicts = field(default_factory=Verdicts.open)
    raw: list[tuple[Document, tuple[str | int, ...], dict[str, Any], str | None]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)  # display path -> the file

    def load_kpi_file(self, file: Path) -> None:
        try:
            doc = load_document(file, display_path=self.display(file), keep_going=True)
        except DefinitionError as exc:
            self.diagnostics.extend(exc.diagnostics)
            return
        self.diagnostics.extend(doc.problems)
        self.files[doc.path] = file
        found = len(doc.problems)
        data = doc.data
        is_list = isinstance(data, dict) and "kpis" in data
        key = None if found else self.verdicts.key("kpi-file", doc.sha256)
        if self.verdicts.accepted(key):  # what jsonschema's "no error" below leads to
            if is_list:
                for i, item in enumerate(data["kpis"]):
                    self.raw.append((doc, ("kpis", i), item, data.get("currency")))
            else:
                self.raw.append((doc, (), data, None))
            return
        if is_list:
            problems = _validate(doc, _kpi_validator("list"))
            self.diagnostics.extend(problems)
            if problems:
                return
            items = data["kpis"]
            for i, item in enumerate(items):
                if found >= MAX_DIAGNOSTICS_PER_FILE:
                    # Past the cap nothing more would be shown, and checking 100,000 broken
                    # entries one by one is what made such a file take half a minute.
                    left = len(items) - i
                    self.diagnostics.append(Diagnostic(
                        doc.path, 0, 0, "not-checked",
                        f"stopped after {found:,} diagnostics: {left:,} more "
                        f"KPI{'s' if left != 1 else ''} of this file not checked", "note"))
                    break
                found += self.check_kpi(doc, ("kpis", i), item, data.get("currency"))
            else:
                if not found:
                    self.verdicts.remember(key)
        elif not self.check_kpi(doc, (), data, None):
            self.verdicts.remember(key)

    def check_kpi(self, doc: Document, where: tuple[str | int, ...], data: Any,
                  file_currency: str | None) -> int:
        """Check one KPI's schema (and formula); the number of diagnostics it got."""
        problems = _validate(doc, _kpi_validator("single"), where)
        self.diagnostics.extend(problems)
        if not problems:
            self.raw.append((doc, where, data, file_currency))
            return 0
        # still check the formula, so fixing the schema error does not reveal a new one
        if isinstance(data, dict) and isinstance(data.get("formula"), str):
            try:
                compile_formula(data["formula"], functions=self.functions)
            except FormulaError as exc:
                self.diagnostics.append(formula_diagnostic(doc, where, data["formula"], exc))
                return len(problems) + 1
        return len(problems)


def formula_diagnostic(doc: Document, where: tuple[str | int, ...], text: str,
                       exc: FormulaError) -> Diagnostic:
    line, column = doc.position(where + ("formula",))
    return Diagnostic(doc.path, line, column + max(exc.column - 1, 0), exc.code,
                      f"{shorten(exc.message, 200)} in formula '{shorten(text)}'", "error",
                      _dotted(where + ("formula",)))


def load_catalog(paths: Iterable[str | os.PathLike[str]] | None = None, *,
                 functions: Mapping[str, FunctionSpec],
                 default_currency: str = DEFAULT_CURRENCY, packs: Packs | None = None) -> Catalog:
    """Load, validate and compile a definition set (default: the pack ``kpiforge:standard``);
    ``packs`` are those references resolve against. Raises :class:`DefinitionError` listing
    every error."""
    paths = [STANDARD_CATALOG] if paths is None else list(paths)
    kpi_files, objective_files, test_files, diagnostics = discover(paths, packs)
    state = _Loading(functions, default_currency, functools.partial(display_path, packs=packs),
                     diagnostics)
    for file in kpi_files:
        state.load_kpi_file(file)

    # ids first: every name check below needs the full set of KPI ids
    installed = known_packs(packs)
    built, extensions = collect_ids(
        (Entry(*item) for item in state.raw),
        build=lambda e: build_definition(e.doc, e.where, e.data, e.file_currency, default_currency),
        pack_of=lambda doc: pack_of(state.files.get(doc.path), installed),
        file_of=lambda doc: state.files.get(doc.path),
        loaded_packs={p.name for p in (pack_of(f, installed) for f in state.files.values()) if p},
        diagnostics=state.diagnostics)

    formulas: dict[str, Formula] = {}
    definitions: dict[str, Definition] = {}
    graph: dict[str, tuple[str, ...]] = {}
    kpi_ids = sorted(built)
    # A hint compares a name with every KPI id: for thousands of broken KPIs that is quadratic,
    # so only the diagnostics that can be shown (the first ones of each file) get one.
    hints_given: Counter[str] = Counter()
    for kpi_id, (definition, doc, where) in built.items():
        formula_ok = True
        problem = threshold_order_problem(definition.direction, definition.thresholds)
        if problem:
            state.diagnostics.append(_diag(doc, where + ("thresholds",), "threshold-order", problem))
        season_problem = anomaly_problem(definition.alerts)
        if season_problem:
            state.diagnostics.append(_diag(doc, where + season_problem[0], "anomaly-season",
                                           season_problem[1]))
        try:
            formula = compile_formula(definition.formula, functions=functions)
        except FormulaError as exc:
            state.diagnostics.append(formula_diagnostic(doc, where, definition.formula, exc))
            formula_ok = False
            formula = None
        declared = set(definition.inputs)
        depends: list[str] = []
        if formula is not None:
            for name in sorted(formula.names):
                if name in declared or (is_total(name) and input_of(name) in declared):
                    continue
                if is_total(name):  # total() of a KPI id or an undeclared name
                    formula_ok = False
                    state.diagnostics.append(_diag(
                        doc, where + ("formula",), "unknown-name",
                        f"{name}: total() takes one of the KPI's declared inputs "
                        f"({', '.join(sorted(declared)) or 'none'})"))
                    continue
                if name in built:
                    depends.append(name)
                    continue
                formula_ok = False
                hints_given[doc.path] += 1
                hint = (did_you_mean(name, sorted(declared) + kpi_ids)
                        if hints_given[doc.path] <= MAX_DIAGNOSTICS_PER_FILE else "")
                state.diagnostics.append(_diag(
                    doc, where + ("formula",), "unknown-name",
                    f"'{shorten(name)}' is neither a declared input nor a KPI id{hint}"))
            for name in sorted(declared - formula.names):
                state.diagnostics.append(_diag(
                    doc, where + ("inputs", name), "unused-input",
                    f"input '{name}' is declared but not used by the formula", "warning", key=True))
        definition = _replace_depends(definition, tuple(depends))
        definitions[kpi_id] = definition
        graph[kpi_id] = definition.depends_on
        if formula_ok and formula is not None:
            formulas[kpi_id] = formula

    state.diagnostics.extend(check_units(
        ((definitions[k], f, built[k][1], built[k][2]) for k, f in formulas.items()),
        definitions, functions, default_currency))
    state.diagnostics.extend(check_measures((definitions[k], built[k][1], built[k][2])
                                            for k in kpi_ids))
    state.diagnostics.extend(check_lifecycle(
        [(definitions[k], built[k][1], built[k][2]) for k in kpi_ids], definitions))

    for cycle in find_cycles(graph):
        definition, doc, where = built[cycle[0]]
        state.diagnostics.append(_diag(doc, where + ("formula",), "cycle",
                                       "dependency cycle: " + " -> ".join(cycle)))

    objectives = _load_objectives(objective_files, definitions, built, state)
    state.verdicts.save()
    catalog = Catalog(
        definitions=MappingProxyType(definitions),
        formulas=MappingProxyType(formulas),
        objectives=MappingProxyType(objectives),
        order=tuple(topological_order(graph)) if not any(
            d.code == "cycle" for d in state.diagnostics) else tuple(graph),
        diagnostics=limit_per_file(state.diagnostics),
        test_files=tuple(test_files),
        extensions=MappingProxyType(extensions),
    )
    if any(d.is_error for d in state.diagnostics):
        raise DefinitionError(state.diagnostics)
    return catalog


def _replace_depends(definition: Definition, depends: tuple[str, ...]) -> Definition:
    return replace(definition, depends_on=depends)


def _load_objectives(files: list[Path], definitions: dict[str, Definition],
                     built: Mapping[str, tuple[Definition, Document, tuple[str | int, ...]]],
                     state: _Loading) -> dict[str, Objective]:
    """Objectives, each with every KPI that belongs to it: those its file lists and those whose
    own ``objectives:`` names it. Either side is enough, so a team KPI can join a bundled
    objective (and a team objective gather bundled KPIs) without editing a file it does not
    own. ``definitions`` is updated in place so both sides agree."""
    objectives: dict[str, Objective] = {}
    listed_at: dict[str, tuple[Document, tuple[str | int, ...]]] = {}
    for file in files:
        try:
            doc = load_document(file, display_path=state.display(file))
        except DefinitionError as exc:
            state.diagnostics.extend(exc.diagnostics)
            continue
        key = None if doc.problems else state.verdicts.key("objectives-file", doc.sha256)
        if not state.verdicts.accepted(key):
            problems = _validate(doc, "objectives.schema.json")
            state.diagnostics.extend(problems)
            if problems:
                continue
            state.verdicts.remember(key)
        for i, item in enumerate(doc.data["objectives"]):
            where: tuple[str | int, ...] = ("objectives", i)
            if item["id"] in objectives:
                state.diagnostics.append(_diag(doc, where + ("id",), "duplicate-id",
                                               f"objective '{item['id']}' is defined twice"))
                continue
            for j, kpi in enumerate(item["kpis"]):
                if kpi not in definitions:
                    state.diagnostics.append(_diag(
                        doc, where + ("kpis", j), "unknown-name",
                        f"objective '{item['id']}' lists unknown KPI '{kpi}'"
                        f"{did_you_mean(kpi, definitions)}"))
            kpis = tuple(item["kpis"])
            objectives[item["id"]] = build_objective(doc, where, item, kpis)
            listed_at[item["id"]] = (doc, where)
            # counted on the file's own list: the advice is for whoever writes that file
            if not MIN_KPIS_PER_OBJECTIVE <= len(kpis) <= MAX_KPIS_PER_OBJECTIVE:
                state.diagnostics.append(_diag(
                    doc, where + ("kpis",),
                    "too-many-kpis" if len(kpis) > MAX_KPIS_PER_OBJECTIVE else "too-few-kpis",
                    f"objective '{item['id']}' has {len(kpis)} KPI{'s' if len(kpis) != 1 else ''}; "
                    f"the guide advises {MIN_KPIS_PER_OBJECTIVE} to {MAX_KPIS_PER_OBJECTIVE} per "
                    "objective", "warning"))
    if not files:
        return objectives

    members = {o.id: list(o.kpis) for o in objectives.values()}
    for definition in definitions.values():
        _, doc, where = built[definition.id]
        for j, objective_id in enumerate(definition.objectives):
            if objective_id not in objectives:
                state.diagnostics.append(_diag(
                    doc, where + ("objectives", j), "unknown-objective",
                    f"KPI '{definition.id}' names unknown objective '{objective_id}'"
                    f"{did_you_mean(objective_id, objectives)}"))
            elif definition.id not in members[objective_id]:
                members[objective_id].append(definition.id)
    named_by: dict[str, list[str]] = {}
    for objective_id, member_ids in members.items():
        objectives[objective_id] = replace(objectives[objective_id], kpis=tuple(member_ids))
        for kpi in member_ids:
            named_by.setdefault(kpi, []).append(objective_id)
        known = [definitions[k] for k in member_ids if k in definitions]
        if known and all(d.vanity for d in known):
            doc, where = listed_at[objective_id]
            state.diagnostics.append(_diag(
                doc, where + ("kpis",), "vanity-only",
                f"objective '{objective_id}' is served only by vanity KPIs", "warning"))
    for kpi, objective_ids in named_by.items():
        named = definitions.get(kpi)
        if named is not None:
            extra = tuple(o for o in objective_ids if o not in named.objectives)
            if extra:
                definitions[kpi] = replace(named, objectives=named.objectives + extra)
    state.diagnostics.extend(check_targets(objectives, definitions, listed_at))
    return objectives
