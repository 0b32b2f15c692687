"""Loading definition sets: files and folders -> validated, compiled :class:`Definition` objects.

Every problem in every file is collected as a :class:`Diagnostic`; nothing stops at the first
error, and one bad file never hides the others. Semantic checks run on what did load: duplicate
ids, unknown names, unused inputs, cycles, threshold order, objectives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from ._formulas import Formula, FunctionSpec, compile_formula
from ._graph import find_cycles, topological_order
from ._model import Definition, Direction, InputSpec, Objective, Thresholds, Unit
from ._schema import load_schema, validate
from ._status import threshold_order_problem
from ._yamlio import Document, load_document
from .errors import DefinitionError, Diagnostic, FormulaError, did_you_mean

DEFAULT_CURRENCY = "EUR"
OBJECTIVES_FILE = "objectives.yaml"
MAX_KPIS_PER_OBJECTIVE = 7  # the guide's "5 to 7 KPIs per objective"
_YAML_SUFFIXES = (".yaml", ".yml")
_TEST_SUFFIXES = (".test.yaml", ".test.yml")


@dataclass(frozen=True)
class Catalog:
    """Everything a definition set holds once loaded and checked."""

    definitions: Mapping[str, Definition]
    formulas: Mapping[str, Formula]
    objectives: Mapping[str, Objective]
    order: tuple[str, ...]
    diagnostics: tuple[Diagnostic, ...] = ()
    test_files: tuple[Path, ...] = ()

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if not d.is_error)


def bundled_definitions_dir() -> Path:
    return Path(str(resources.files("kpiforge.definitions")))


def _display(path: Path) -> str:
    """Paths in messages: relative to the working directory, or to the package for bundled files."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def _display_bundled(path: Path) -> str:
    try:
        return "definitions/" + path.relative_to(bundled_definitions_dir()).as_posix()
    except ValueError:
        return _display(path)


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Path], list[Path], list[Diagnostic]]:
    """Split the given files/folders into definition files, objectives files and test files."""
    kpi_files: list[Path] = []
    objective_files: list[Path] = []
    test_files: list[Path] = []
    problems: list[Diagnostic] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.suffix in _YAML_SUFFIXES and p.is_file())
        elif path.is_file():
            candidates = [path]
        else:
            problems.append(Diagnostic(str(raw), 0, 0, "not-found", "no such file or directory"))
            continue
        for candidate in candidates:
            if candidate.name.endswith(_TEST_SUFFIXES):
                test_files.append(candidate)
            elif candidate.name == OBJECTIVES_FILE:
                objective_files.append(candidate)
            else:
                kpi_files.append(candidate)
    dedup = lambda items: list(dict.fromkeys(p.resolve() for p in items))  # noqa: E731
    return dedup(kpi_files), dedup(objective_files), dedup(test_files), problems


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


def _kpi_schema(kind: str) -> dict[str, Any]:
    """The published schema re-rooted at one KPI, or at a `kpis:` file whose items are checked
    one by one, so errors name the field instead of a failed oneOf and one bad KPI of a list
    does not hide the others."""
    full = load_schema("kpi.schema.json")
    base = {k: v for k, v in full.items() if k not in ("oneOf", "title", "description")}
    if kind == "single":
        return {**base, "$ref": "#/$defs/kpi"}
    file_schema = full["oneOf"][1]
    loose_items = {**file_schema["properties"]["kpis"], "items": {"type": "object"}}
    return {**base, **file_schema, "properties": {**file_schema["properties"], "kpis": loose_items}}


@dataclass
class _Loading:
    functions: Mapping[str, FunctionSpec]
    default_currency: str
    display: Any
    diagnostics: list[Diagnostic] = field(default_factory=list)
    raw: list[tuple[Document, tuple[str | int, ...], dict[str, Any], str | None]] = field(default_factory=list)

    def load_kpi_file(self, file: Path) -> None:
        try:
            doc = load_document(file, display_path=self.display(file), keep_going=True)
        except DefinitionError as exc:
            self.diagnostics.extend(exc.diagnostics)
            return
        self.diagnostics.extend(doc.problems)
        data = doc.data
        if isinstance(data, dict) and "kpis" in data:
            problems = validate(doc, _kpi_schema("list"))
            self.diagnostics.extend(problems)
            if problems:
                return
            single = _kpi_schema("single")
            for i, item in enumerate(data["kpis"]):
                self.check_kpi(doc, ("kpis", i), item, data.get("currency"), single)
        else:
            self.check_kpi(doc, (), data, None, _kpi_schema("single"))

    def check_kpi(self, doc: Document, where: tuple[str | int, ...], data: Any,
                  file_currency: str | None, schema: dict[str, Any]) -> None:
        problems = validate(doc, schema, base_path=where)
        self.diagnostics.extend(problems)
        if not problems:
            self.raw.append((doc, where, data, file_currency))
            return
        # still check the formula, so fixing the schema error does not reveal a new one
        if isinstance(data, dict) and isinstance(data.get("formula"), str):
            try:
                compile_formula(data["formula"], functions=self.functions)
            except FormulaError as exc:
                self.diagnostics.append(formula_diagnostic(doc, where, data["formula"], exc))


def formula_diagnostic(doc: Document, where: tuple[str | int, ...], text: str,
                       exc: FormulaError) -> Diagnostic:
    line, column = doc.position(where + ("formula",))
    return Diagnostic(doc.path, line, column + max(exc.column - 1, 0), exc.code,
                      f"{exc.message} in formula '{text}'", "error", _dotted(where + ("formula",)))


def _build(doc: Document, where: tuple[str | int, ...], data: Mapping[str, Any],
           file_currency: str | None, default_currency: str) -> Definition:
    thresholds = Thresholds(**{k: float(v) for k, v in (data.get("thresholds") or {}).items()})
    unit = Unit(data["unit"])
    currency = data.get("currency") or file_currency
    if unit is Unit.CURRENCY and not currency:
        currency = default_currency
    category = data.get("category") or Path(doc.path).parent.name
    return Definition(
        id=data["id"],
        name=data["name"],
        formula=data["formula"],
        unit=unit,
        direction=Direction(data["direction"]),
        inputs=MappingProxyType({
            name: InputSpec(name, (spec or {}).get("description", ""), (spec or {}).get("unit"))
            for name, spec in (data.get("inputs") or {}).items()
        }),
        thresholds=thresholds,
        target=float(data["target"]) if "target" in data else None,
        tolerance=float(data["tolerance"]) if "tolerance" in data else None,
        currency=currency,
        category=category,
        description=data.get("description", ""),
        descriptions=MappingProxyType(dict(data.get("descriptions") or {})),
        labels=MappingProxyType(dict(data.get("labels") or {})),
        objectives=tuple(data.get("objectives") or ()),
        owner=data.get("owner", ""),
        tags=tuple(data.get("tags") or ()),
        version=int(data.get("version", 1)),
        status=data.get("status", "draft"),
        vanity=bool(data.get("vanity", False)),
        alerts=MappingProxyType(dict(data["alerts"])) if data.get("alerts") else None,
        path=doc.path,
        line=doc.position(where)[0] if where else 1,
    )


def load_catalog(paths: Iterable[str | os.PathLike[str]] | None = None, *,
                 functions: Mapping[str, FunctionSpec],
                 default_currency: str = DEFAULT_CURRENCY) -> Catalog:
    """Load, validate and compile a definition set. Raises :class:`DefinitionError` listing every error."""
    bundled = paths is None
    paths = [bundled_definitions_dir()] if bundled else list(paths)
    kpi_files, objective_files, test_files, diagnostics = discover(paths)
    state = _Loading(functions, default_currency, _display_bundled if bundled else _display,
                     diagnostics)
    for file in kpi_files:
        state.load_kpi_file(file)

    # ids first: every name check below needs the full set of KPI ids
    first_seen: dict[str, tuple[Document, tuple[str | int, ...]]] = {}
    built: dict[str, tuple[Definition, Document, tuple[str | int, ...]]] = {}
    for doc, where, data, file_currency in state.raw:
        kpi_id = data["id"]
        if kpi_id in first_seen:
            other_doc, other_where = first_seen[kpi_id]
            other_line = other_doc.position(other_where + ("id",))[0]
            state.diagnostics.append(_diag(
                doc, where + ("id",), "duplicate-id",
                f"KPI id '{kpi_id}' is already defined in {other_doc.path}:{other_line}"))
            continue
        first_seen[kpi_id] = (doc, where)
        built[kpi_id] = (_build(doc, where, data, file_currency, default_currency), doc, where)

    formulas: dict[str, Formula] = {}
    definitions: dict[str, Definition] = {}
    graph: dict[str, tuple[str, ...]] = {}
    for kpi_id, (definition, doc, where) in built.items():
        formula_ok = True
        problem = threshold_order_problem(definition.direction, definition.thresholds)
        if problem:
            state.diagnostics.append(_diag(doc, where + ("thresholds",), "threshold-order", problem))
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
                if name in declared:
                    continue
                if name in built:
                    depends.append(name)
                    continue
                formula_ok = False
                hint = did_you_mean(name, sorted(declared | set(built)))
                state.diagnostics.append(_diag(
                    doc, where + ("formula",), "unknown-name",
                    f"'{name}' is neither a declared input nor a KPI id{hint}"))
            for name in sorted(declared - formula.names):
                state.diagnostics.append(_diag(
                    doc, where + ("inputs", name), "unused-input",
                    f"input '{name}' is declared but not used by the formula", "warning", key=True))
        definition = _replace_depends(definition, tuple(depends))
        definitions[kpi_id] = definition
        graph[kpi_id] = definition.depends_on
        if formula_ok and formula is not None:
            formulas[kpi_id] = formula

    for cycle in find_cycles(graph):
        definition, doc, where = built[cycle[0]]
        state.diagnostics.append(_diag(doc, where + ("formula",), "cycle",
                                       "dependency cycle: " + " -> ".join(cycle)))

    objectives = _load_objectives(objective_files, definitions, state)
    catalog = Catalog(
        definitions=MappingProxyType(definitions),
        formulas=MappingProxyType(formulas),
        objectives=MappingProxyType(objectives),
        order=tuple(topological_order(graph)) if not any(
            d.code == "cycle" for d in state.diagnostics) else tuple(graph),
        diagnostics=tuple(sorted(state.diagnostics)),
        test_files=tuple(test_files),
    )
    if any(d.is_error for d in catalog.diagnostics):
        raise DefinitionError(catalog.diagnostics)
    return catalog


def _replace_depends(definition: Definition, depends: tuple[str, ...]) -> Definition:
    from dataclasses import replace

    return replace(definition, depends_on=depends)


def _load_objectives(files: list[Path], definitions: Mapping[str, Definition],
                     state: _Loading) -> dict[str, Objective]:
    objectives: dict[str, Objective] = {}
    where_defined: dict[str, Document] = {}
    for file in files:
        try:
            doc = load_document(file, display_path=state.display(file))
        except DefinitionError as exc:
            state.diagnostics.extend(exc.diagnostics)
            continue
        problems = validate(doc, load_schema("objectives.schema.json"))
        state.diagnostics.extend(problems)
        if problems:
            continue
        for i, item in enumerate(doc.data["objectives"]):
            where = ("objectives", i)
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
            objectives[item["id"]] = Objective(
                item["id"], MappingProxyType(dict(item["labels"])),
                MappingProxyType(dict(item.get("descriptions") or {})), kpis, doc.path,
                doc.position(where)[0])
            where_defined[item["id"]] = doc
            if len(kpis) > MAX_KPIS_PER_OBJECTIVE:
                state.diagnostics.append(_diag(
                    doc, where + ("kpis",), "too-many-kpis",
                    f"objective '{item['id']}' has {len(kpis)} KPIs; the guide advises 5 to "
                    f"{MAX_KPIS_PER_OBJECTIVE} per objective", "warning"))
            known = [definitions[k] for k in kpis if k in definitions]
            if known and all(d.vanity for d in known):
                state.diagnostics.append(_diag(
                    doc, where + ("kpis",), "vanity-only",
                    f"objective '{item['id']}' is served only by vanity KPIs", "warning"))
    if not files:
        return objectives
    for definition in definitions.values():
        for objective_id in definition.objectives:
            objective = objectives.get(objective_id)
            if objective is None:
                state.diagnostics.append(Diagnostic(
                    definition.path, definition.line, 1, "unknown-objective",
                    f"KPI '{definition.id}' names unknown objective '{objective_id}'"
                    f"{did_you_mean(objective_id, objectives)}", "error", "objectives"))
            elif definition.id not in objective.kpis:
                state.diagnostics.append(Diagnostic(
                    objective.path, objective.line, 1, "objective-mismatch",
                    f"KPI '{definition.id}' names objective '{objective_id}' but the objective "
                    f"does not list it", "error", "kpis"))
    for objective in objectives.values():
        for kpi in objective.kpis:
            definition = definitions.get(kpi)
            if definition is not None and objective.id not in definition.objectives:
                state.diagnostics.append(Diagnostic(
                    definition.path, definition.line, 1, "objective-mismatch",
                    f"objective '{objective.id}' lists KPI '{kpi}' but the KPI's objectives "
                    f"do not name it", "error", "objectives"))
    return objectives
