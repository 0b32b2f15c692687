"""Bind a project's sources to the measures its definitions define, once its engine is loaded.

A definition may define an input as a measure over raw rows (``agg``, ``field``, ``where``);
a source then lists the input without restating it (``promoters: {}``) and binds the
definition's fields to its columns (``fields: {score: likelihood}``). Binding turns each such
entry into the :class:`~kpiforge.sources.InputSpec` the source runs: the definition's
aggregation, the bound column, the condition compiled with the bound columns and the project's
``parameters`` (``{csat: {scale: 10}}``). A project's ``filter`` still scopes the rows (which
survey a shared table's answers belong to), in addition to the condition.

Restating a measure is an error naming both files, unless it says the same thing: the same
``agg`` (the definition's condition still applies), or ``sum`` over a column that already
holds the measure's counts or sums per row (pre-aggregated data). Former input names (a
definition's ``aliases``) still work, with a warning that names the new ones.

``for: [kpi]`` on a source's input binds it for those KPIs only (the run keys it
``input@kpi``): where one KPI must read an input from elsewhere than every other KPI does.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ._aliases import input_aliases
from ._conditions import compile_condition
from ._measure_check import measure_text
from ._model import Definition, InputSpec as InputDefinition
from ._project_sources import SourceConfig
from .errors import Diagnostic, FormulaError, ProjectError, did_you_mean
from .sources import InputSpec

if TYPE_CHECKING:
    from ._project import Project

__all__ = ["bind_sources", "measures"]

# a restated agg that keeps the meaning: a column of per-row counts or sums, summed again
_PRE_AGGREGATED = {"count": "sum", "sum": "sum"}


def measures(definitions: Iterable[Definition]) -> dict[str, tuple[Definition, InputDefinition]]:
    """Every input some definition defines as a measure, with that definition (the first)."""
    found: dict[str, tuple[Definition, InputDefinition]] = {}
    for definition in definitions:
        for name, spec in definition.inputs.items():
            if spec.agg is not None:
                found.setdefault(name, (definition, spec))
    return found


class _Binding:
    def __init__(self, project: "Project", definitions: Mapping[str, Definition]):
        self.project = project
        self.definitions = definitions
        self.measures = measures(definitions.values())
        self.declared = {n for d in definitions.values() for n in d.inputs}
        self.aliases = input_aliases(definitions.values())
        self.problems: list[Diagnostic] = []
        self.warnings: list[str] = []
        self.values = self._parameters()

    def problem(self, path: tuple[Any, ...], code: str, message: str) -> None:
        document = self.project.document
        if document is None:
            self.problems.append(Diagnostic("<project>", 0, 0, code, message,
                                            field=".".join(map(str, path))))
        else:
            self.problems.append(document.diagnostic(path, code, message))

    def _parameters(self) -> dict[str, dict[str, float]]:
        raw = self.project.raw.get("parameters") or {}
        values = {kpi: {p: spec.default for p, spec in d.parameters.items()}
                  for kpi, d in self.definitions.items() if d.parameters}
        for kpi, settings in raw.items():
            definition = self.definitions.get(kpi)
            if definition is None or not definition.parameters:
                with_parameters = sorted(values)
                self.problem(("parameters", kpi), "parameter",
                             f"no loaded KPI '{kpi}' has parameters"
                             f"{did_you_mean(kpi, with_parameters)} (KPIs with parameters: "
                             f"{', '.join(with_parameters) or 'none'})")
                continue
            for name, value in settings.items():
                spec = definition.parameters.get(name)
                if spec is None:
                    self.problem(("parameters", kpi, name), "parameter",
                                 f"{kpi} has no parameter '{name}'"
                                 f"{did_you_mean(name, definition.parameters)}; its parameters: "
                                 f"{', '.join(sorted(definition.parameters))}")
                elif spec.allowed and float(value) not in spec.allowed:
                    self.problem(("parameters", kpi, name), "parameter",
                                 f"{kpi}.{name} must be one of "
                                 f"{', '.join(f'{v:g}' for v in spec.allowed)}, not {value:g}")
                else:
                    values[kpi][name] = float(value)
        return values

    def source(self, config: SourceConfig) -> SourceConfig:
        written = (self.project.raw.get("sources") or {}).get(config.name) or {}
        raw_inputs = written.get("inputs") or {}
        inputs: dict[str, InputSpec] = {}
        for name in config.provides:
            settings = raw_inputs.get(name) or {}
            targets = [name]
            if name not in self.declared and name in self.aliases:
                targets = list(self.aliases[name])
                self.warnings.append(
                    f"source '{config.name}': input '{name}' is a former name, now "
                    f"{' and '.join(targets)}; provide {'them' if len(targets) > 1 else 'it'} "
                    f"under the new name{'s' if len(targets) > 1 else ''}")
            for target in targets:
                spec = self._input(config, name, target, settings)
                if spec is None:
                    continue
                for key in self._keys(config, name, target, settings.get("for")):
                    inputs[key] = replace(spec, name=key) if key != target else spec
        self._check_fields(config)
        return replace(config, inputs=MappingProxyType(inputs), unbound=())

    def _input(self, config: SourceConfig, written: str, name: str,
               settings: Mapping[str, Any]) -> InputSpec | None:
        path = ("sources", config.name, "inputs", written)
        stated = config.inputs.get(written)
        found = self.measures.get(name)
        if found is None:
            if stated is None:
                self.problem(path, "input", f"input '{written}' gives no agg, and no loaded "
                             "definition defines it as a measure; say how its rows aggregate "
                             "(agg: sum, count, count_distinct, min, max, avg, first or last)")
                return None
            return replace(stated, name=name) if name != written else stated
        definition, measure = found
        assert measure.agg is not None
        if stated is not None and stated.agg != measure.agg:
            if _PRE_AGGREGATED.get(measure.agg) == stated.agg and stated.expression is None:
                return replace(stated, name=name)  # a column of per-row counts, summed again
            restated = (f"{stated.agg} of its own expression" if stated.expression is not None
                        else stated.agg)
            self.problem(path + ("agg",), "measure-conflict",
                         f"input '{name}' is defined in {definition.path}:{definition.line} "
                         f"({definition.id}) as {measure_text(measure.agg, measure.field_name, measure.where)}; "
                         f"this source restates it as {restated}: remove 'agg' and bind the "
                         "definition's fields instead, or give the input another name")
            return None
        columns = {f: config.fields.get(f, f) for f in definition.fields}
        column: str | None = "*"
        expression: str | None = None
        if "column" in settings or "expression" in settings:
            column, expression = settings.get("column"), settings.get("expression")
        elif measure.field_name is not None:
            column = columns.get(measure.field_name, measure.field_name)
        where = None
        if measure.where is not None:
            try:
                where = compile_condition(measure.where, columns, self.values.get(definition.id, {}))
            except FormulaError as exc:  # the catalog checked it: only a binding can break it
                self.problem(path, "measure", f"input '{name}': {exc.message}")
                return None
        filters = stated.filter if stated is not None else _filters(settings)
        return InputSpec(name, measure.agg, column, expression, filters, where)

    def _keys(self, config: SourceConfig, written: str, name: str, only: Any) -> list[str]:
        """Where the run finds the input: its name, or ``name@kpi`` for each KPI of ``for:``
        (that KPI alone reads it from this source)."""
        if not only:
            return [name]
        keys = []
        for kpi in only:
            definition = self.definitions.get(kpi)
            if definition is None or name not in definition.inputs:
                users = sorted(k for k, d in self.definitions.items() if name in d.inputs)
                self.problem(("sources", config.name, "inputs", written, "for"), "input",
                             f"'for: {kpi}': no loaded KPI '{kpi}' reads input '{name}'"
                             f"{did_you_mean(kpi, users)} (KPIs reading it: "
                             f"{', '.join(users) or 'none'})")
                continue
            keys.append(f"{name}@{kpi}")
        return keys

    def _check_fields(self, config: SourceConfig) -> None:
        usable = {f for n in config.provides for a in (self.aliases.get(n) or (n,))
                  if a in self.measures for f in self.measures[a][0].fields}
        for field_name in config.fields:
            if field_name not in usable:
                self.problem(("sources", config.name, "fields", field_name), "field",
                             f"'{field_name}' is not a field of the measures this source provides"
                             f"{did_you_mean(field_name, sorted(usable))} (their fields: "
                             f"{', '.join(sorted(usable)) or 'none'})")


def _filters(settings: Mapping[str, Any]) -> Mapping[str, Any]:
    raw = settings.get("filter") or {}
    return MappingProxyType({str(k): tuple(v) if isinstance(v, (list, tuple)) else v
                             for k, v in raw.items()})


def bind_sources(project: "Project", definitions: Mapping[str, Definition]
                 ) -> tuple[Mapping[str, SourceConfig], tuple[str, ...]]:
    """The project's sources with every measure bound and former names renamed, and the
    warnings about former names; a :class:`ProjectError` listing every binding problem."""
    binding = _Binding(project, definitions)
    bound = {name: binding.source(config) for name, config in project.sources.items()}
    if binding.problems:
        raise ProjectError(binding.problems)
    return MappingProxyType(bound), tuple(binding.warnings)
