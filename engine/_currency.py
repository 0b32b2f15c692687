"""Money thresholds in the project's currency: converted with the project's ``fx`` rates.

A money KPI (``unit: currency``) is computed from the project's data, so in the project's
``currency``; its thresholds (and target, tolerance) are written in ``thresholds.currency``
(the bundled catalog's are EUR; without it, the KPI's own currency). When the two differ, the
project's ``fx: {EUR: 162.5}`` (1 EUR = 162.5 units of the project currency) converts them when
the project's engine is built; without a rate the project is refused, naming each KPI, because
relabelling 2.5 EUR as 2.5 JPY would call an expensive click "good".
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from ._model import Definition, Thresholds, Unit
from .errors import DefinitionError, ProjectError

if TYPE_CHECKING:
    from ._engine import Engine
    from ._project import Project

__all__ = ["check_project_currency", "convert_engine", "currency_problems", "project_engine"]


def _written_in(definition: Definition) -> str | None:
    """The currency a money KPI's thresholds are written in (None: not a money KPI)."""
    if definition.unit is not Unit.CURRENCY:
        return None
    return definition.thresholds.currency or definition.currency


def _has_amounts(definition: Definition) -> bool:
    t = definition.thresholds
    return any(v is not None for v in (t.good, t.warning, t.critical, definition.target,
                                       definition.tolerance))


def currency_problems(definitions: Mapping[str, Definition], currency: str,
                      fx: Mapping[str, float]) -> list[tuple[str, str]]:
    """(KPI, currency written) for each money KPI whose thresholds need a rate ``fx`` lacks."""
    out = []
    for kpi_id, definition in definitions.items():
        written = _written_in(definition)
        if written and written != currency and written not in fx and _has_amounts(definition):
            out.append((kpi_id, written))
    return out


def _scaled(value: float | None, rate: float) -> float | None:
    return None if value is None else value * rate


def _converted(definition: Definition, currency: str, fx: Mapping[str, float]) -> Definition:
    written = _written_in(definition)
    if written is None:
        return definition
    if written == currency or written not in fx:
        # already in the project currency: only the label moves to the data's currency
        return definition if definition.currency == currency else replace(definition, currency=currency)
    rate = float(fx[written])
    t = definition.thresholds
    thresholds = Thresholds(_scaled(t.good, rate), _scaled(t.warning, rate),
                            _scaled(t.critical, rate), currency=currency,
                            converted_from=written, fx_rate=rate, sources=t.sources)
    return replace(definition, thresholds=thresholds, currency=currency,
                   target=_scaled(definition.target, rate),
                   tolerance=_scaled(definition.tolerance, rate))


def convert_engine(engine: "Engine", currency: str, fx: Mapping[str, float]) -> "Engine":
    """``engine`` with its money KPIs' thresholds, target and tolerance in ``currency``."""
    from ._engine import Engine

    definitions = {k: _converted(d, currency, fx) for k, d in engine.definitions.items()}
    if all(definitions[k] is d for k, d in engine.definitions.items()):
        return engine
    catalog = replace(engine.catalog, definitions=MappingProxyType(definitions))
    return Engine(catalog, engine.plugins)


def _fx(project: "Project") -> dict[str, float]:
    raw: Any = project.raw.get("fx") or {}
    return {str(k): float(v) for k, v in raw.items()}


def _error(project: "Project", problems: list[tuple[str, str]]) -> ProjectError:
    currency = project.currency
    where = ("currency",) if "currency" in project.raw else ()
    diagnostics = []
    for kpi_id, written in problems:
        message = (f"KPI '{kpi_id}' has thresholds in {written} but the project currency is "
                   f"{currency}: give the rate, fx: {{{written}: <rate>}} (1 {written} = <rate> "
                   f"{currency}), or override the KPI's thresholds in {currency}")
        if project.document is not None:
            diagnostics.append(project.document.diagnostic(where, "currency", message))
        else:  # a Project built by hand has no file to point at
            from .errors import Diagnostic

            diagnostics.append(Diagnostic("<project>", 0, 0, "currency", message))
    return ProjectError(diagnostics)


def project_engine(project: "Project", engine: "Engine") -> "Engine":
    """The project's engine: thresholds converted, or ProjectError naming each KPI lacking a rate."""
    if "currency" not in project.raw and "fx" not in project.raw:
        # no currency said: the KPIs' own currencies, as written (nothing to convert to)
        return engine
    fx = _fx(project)
    problems = currency_problems(engine.definitions, project.currency, fx)
    if problems:
        raise _error(project, problems)
    return convert_engine(engine, project.currency, fx)


def check_project_currency(project: "Project") -> None:
    """At load, for a project whose currency is not the catalog's EUR or that gives rates:
    build the engine now so that a missing rate is a load error (``validate --project``).
    Definition errors are left for the engine to report where it is used."""
    if project.raw.get("currency", "EUR") == "EUR" and "fx" not in project.raw:
        return  # the bundled thresholds are EUR: nothing to convert, nothing to load early
    try:
        project.engine  # noqa: B018 - cached on the project; raises ProjectError for a rate
    except ProjectError:
        raise
    except DefinitionError:
        return
