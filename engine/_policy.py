"""A project's ``policy:``: the rules its KPI catalog must follow, checked by
``kpiforge validate --project`` so that CI enforces them on every change.

Every rule is opt-in (a project without ``policy:`` is checked as before):

* ``required``: ``owner``, ``labels``, ``descriptions``: fields every KPI must have; labels and
  descriptions in each of ``languages`` (default ``[en]``).
* ``min_tests``: test cases each KPI needs (KPI cases expecting it plus alert cases of it).
* ``objective_size``: ``{min, max}`` KPIs per objective, counting every KPI that serves it
  (those listed and those that join it through their own ``objectives:``); a warning.
* ``vanity_in_objectives``: ``warn`` (default), ``error`` or ``allow`` for a vanity KPI serving
  an objective: activity is not business impact.
* ``statuses``: the statuses allowed (``[certified]`` for a catalog where nothing is a draft).
* ``threshold_sources``: ``true``: every threshold level says where it comes from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from ._locate import FieldLocator
from ._model import Definition, Objective
from .errors import DefinitionError, Diagnostic

__all__ = ["check_policy", "case_counts"]

_SEVERITY = {"warn": "warning", "error": "error"}


def case_counts(test_files: Iterable[Path]) -> dict[str, int]:
    """Test cases per KPI id in ``test_files``: a KPI case counts for every KPI it expects."""
    from ._yamlio import load_document

    counts: dict[str, int] = {}
    for file in test_files:
        try:
            data = load_document(file).data
        except DefinitionError:
            continue  # reported by kpiforge test; here it only counts no case
        if not isinstance(data, Mapping):
            continue
        for case in data.get("tests") or ():
            for kpi in (case.get("expect") or {}) if isinstance(case, Mapping) else ():
                counts[str(kpi)] = counts.get(str(kpi), 0) + 1
        for case in data.get("alert_tests") or ():
            if isinstance(case, Mapping) and isinstance(case.get("kpi"), str):
                counts[case["kpi"]] = counts.get(case["kpi"], 0) + 1
    return counts


def _kpi(locate: FieldLocator, d: Definition, code: str, message: str, severity: str = "error",
         field: str = "") -> Diagnostic:
    # at the field when it is written, else at the KPI (a missing owner has no line)
    path, line, column = locate(d, (field,) if field else ())
    return Diagnostic(path, line, column, f"policy-{code}", f"KPI '{d.id}': {message}",
                      severity, field)


def _fields(locate: FieldLocator, d: Definition, required: list[str],
            languages: list[str]) -> list[Diagnostic]:
    out = []
    if "owner" in required and not d.owner:
        out.append(_kpi(locate, d, "owner", "no owner; the policy requires one", field="owner"))
    if "labels" in required:
        missing = [lang for lang in languages if not d.labels.get(lang)]
        if missing:
            out.append(_kpi(locate, d, "labels", f"no label in {', '.join(missing)}; the policy "
                            f"requires labels in {', '.join(languages)}", field="labels"))
    if "descriptions" in required:
        missing = [lang for lang in languages if not (d.descriptions.get(lang) or (
            lang == "en" and d.description))]
        if missing:
            out.append(_kpi(locate, d, "descriptions", f"no description in {', '.join(missing)}; the "
                            f"policy requires descriptions in {', '.join(languages)}",
                            field="descriptions"))
    return out


def check_policy(policy: Mapping[str, Any], definitions: Mapping[str, Definition],
                 objectives: Mapping[str, Objective], counts: Mapping[str, int]) -> list[Diagnostic]:
    """The located violations of ``policy`` (the project file's ``policy:``, schema-valid)."""
    out: list[Diagnostic] = []
    locate = FieldLocator()
    required = list(policy.get("required") or ())
    languages = list(policy.get("languages") or ["en"])
    statuses = policy.get("statuses")
    min_tests = int(policy.get("min_tests", 0))
    for d in definitions.values():
        out += _fields(locate, d, required, languages)
        if statuses is not None and d.status not in statuses:
            out.append(_kpi(locate, d, "status", f"status {d.status} is not allowed by the policy "
                            f"({', '.join(statuses)})", field="status"))
        if counts.get(d.id, 0) < min_tests:
            n = counts.get(d.id, 0)
            out.append(_kpi(locate, d, "tests", f"{n} test case{'s' if n != 1 else ''}; the policy "
                            f"requires at least {min_tests}"))
        unsourced = d.thresholds.unsourced() if policy.get("threshold_sources") else ()
        if unsourced:
            out.append(_kpi(locate, d, "threshold-source", f"no source for the {', '.join(unsourced)} "
                            "threshold; the policy requires every threshold to say where it "
                            "comes from (thresholds.source)", field="thresholds"))
    size = policy.get("objective_size")
    vanity = _SEVERITY.get(policy.get("vanity_in_objectives", "warn"))
    for o in objectives.values():
        if size is not None and not size.get("min", 0) <= len(o.kpis) <= size.get("max", len(o.kpis)):
            out.append(Diagnostic(o.path, o.line, 1, "policy-objective-size",
                                  f"objective '{o.id}' is served by {len(o.kpis)} KPIs; the "
                                  f"policy asks for {size.get('min', 0)} to "
                                  f"{size.get('max', '∞')}", "warning", "kpis"))
        for kpi in o.kpis:
            member = definitions.get(kpi)
            if vanity and member is not None and member.vanity:
                out.append(Diagnostic(o.path, o.line, 1, "policy-vanity-in-objective",
                                      f"objective '{o.id}' is served by vanity KPI '{kpi}': "
                                      "it shows activity, not business impact", vanity, "kpis"))
    return out
