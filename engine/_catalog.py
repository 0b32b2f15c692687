"""The generated KPI catalog: every loaded KPI as Markdown, one self-contained HTML page, or JSON.

:func:`catalog_data` turns an engine into plain, JSON-ready data in one language (labels,
descriptions, thresholds explained in words, dependency graph); the renderers only lay it out.
Output is deterministic (no timestamps) so a generated catalog can be committed and diffed.

The HTML page must open anywhere, offline, and print well: inline CSS, an inline SVG graph laid
out by ``_catalog_layout`` (columns by dependency depth), no script, font, image or any other
URL to load. It is rendered by jinja2 from the package's ``templates/catalog.html.j2`` with
autoescaping on, since labels and descriptions come from YAML files that third parties write.
The UI strings are ``templates/catalog_strings.yaml`` (``_catalog_words``), the Markdown
renderer ``_catalog_markdown``.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

import jinja2

from ._catalog_layout import feeding_trees, graph_layout
from ._catalog_markdown import render_markdown
from ._catalog_words import (LANGUAGES, UI, category_key, category_label, count, summary, tag_label,
                             source_data, target_data, threshold_texts)
from ._measure_check import measure_text

__all__ = ["FILE_NAMES", "FORMATS", "LANGUAGES", "UI", "catalog_data", "graph_layout", "render",
           "render_html", "render_json", "render_markdown", "threshold_texts"]

FORMATS = ("md", "html", "json")
FILE_NAMES = {"md": "catalog.md", "html": "catalog.html", "json": "catalog.json"}
JSON_FORMAT = "kpiforge-catalog/v1"


def _depths(graph: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Longest path from a KPI without dependencies; iterative so deep chains cannot overflow."""
    depth: dict[str, int] = {}
    for root in sorted(graph):
        stack = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if node in depth:
                continue
            deps = [d for d in graph.get(node, ()) if d in graph]
            if ready or not deps:
                depth[node] = 1 + max((depth.get(d, 0) for d in deps), default=-1)
                continue
            stack.append((node, True))
            stack.extend((d, False) for d in deps if d not in depth)
    return depth


def catalog_data(engine: Any, lang: str = "en") -> dict[str, Any]:
    """Everything the catalog shows, in ``lang``, as plain data with stable keys and order."""
    if lang not in UI:
        raise ValueError(f"unsupported language {lang!r}; choose from {', '.join(LANGUAGES)}")
    ui = UI[lang]
    definitions = engine.definitions
    graph = {k: tuple(d.depends_on) for k, d in definitions.items()}
    used_by: dict[str, list[str]] = {k: [] for k in definitions}
    for kpi, deps in graph.items():
        for dep in deps:
            used_by.setdefault(dep, []).append(kpi)
    depth = _depths(graph)
    objectives = engine.objectives
    ordered = sorted(definitions.values(), key=lambda d: (category_key(d.category), d.id))

    extensions = engine.catalog.extensions
    kpis = []
    for d in ordered:
        extension = extensions.get(d.id)
        kpis.append({
            "id": d.id,
            "label": d.label(lang),
            "labels": dict(d.labels),
            "name": d.name,
            "description": d.text(lang),
            "category": d.category,
            "category_label": category_label(d.category, lang),
            "objectives": [{"id": o, "label": objectives[o].label(lang) if o in objectives else o}
                           for o in d.objectives],
            "owner": d.owner,
            "status": d.status,
            "status_label": ui["lifecycle"].get(d.status, d.status),
            "version": d.version,
            "vanity": d.vanity,
            "tags": list(d.tags),
            "tag_labels": [tag_label(t, lang) for t in d.tags],
            "formula": d.formula,
            "inputs": [{"name": n, "description": s.text(lang), "unit": s.unit,
                        "measure": measure_text(s.agg, s.field_name, s.where) if s.agg else None}
                       for n, s in d.inputs.items()],
            "inputs_needed": sorted(engine.required_inputs(d.id)),
            "unit": d.unit.value,
            "unit_label": ui["units"].get(d.unit.value, d.unit.value),
            "currency": d.currency,
            "direction": d.direction.value,
            "direction_label": ui["directions"].get(d.direction.value, d.direction.value),
            "target": d.target,
            "tolerance": d.tolerance,
            "thresholds": d.thresholds.to_dict(),
            "thresholds_text": threshold_texts(d, lang),
            "threshold_sources": source_data(d.thresholds.sources, ui),
            "replaced_by": d.replaced_by,
            "depends_on": sorted(d.depends_on),
            "used_by": sorted(used_by.get(d.id, ())),
            "depth": depth.get(d.id, 0),
            "path": d.path,
            # provenance of an extended KPI: its base, the base's pack and version, what changed
            "extends": extension.to_dict() if extension else None,
            "extends_text": ui["extends_text"].format(
                base=extension.base, changed=", ".join(extension.changed),
                source=f"{extension.pack} {extension.version or ''}".rstrip()
                if extension.pack else extension.base_path) if extension else "",
        })

    categories = []
    for category in sorted({d.category for d in ordered}, key=category_key):
        categories.append({"id": category, "label": category_label(category, lang),
                           "kpis": [d.id for d in ordered if d.category == category]})
    edges = [{"from": dep, "to": kpi} for kpi in sorted(graph) for dep in sorted(graph[kpi])]
    in_graph = sorted({e["from"] for e in edges} | {e["to"] for e in edges},
                      key=lambda k: (depth.get(k, 0), k))
    return {
        "format": JSON_FORMAT,
        "lang": lang,
        "title": ui["title"],
        "counts": {"kpis": len(kpis), "categories": len(categories), "objectives": len(objectives)},
        "categories": categories,
        "objectives": [{"id": o.id, "label": o.label(lang),
                        "description": o.descriptions.get(lang) or o.descriptions.get("en", ""),
                        "kpis": list(o.kpis), "owner": o.owner,
                        "target": target_data(o, definitions, lang)} for o in objectives.values()],
        "kpis": kpis,
        "graph": {"nodes": [{"id": k, "label": definitions[k].label(lang), "depth": depth.get(k, 0)}
                            for k in in_graph],
                  "edges": edges},
    }


# -- JSON --------------------------------------------------------------------------------------
def render_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


_ENVIRONMENT = jinja2.Environment(loader=jinja2.PackageLoader("kpiforge", "templates"),
                                  autoescape=True, undefined=jinja2.StrictUndefined,
                                  keep_trailing_newline=True)


def render_html(data: Mapping[str, Any]) -> str:
    template = _ENVIRONMENT.get_template("catalog.html.j2")
    return template.render(data=data, ui=UI[data["lang"]], by_id={k["id"]: k for k in data["kpis"]},
                           layout=graph_layout(data), trees=feeding_trees(data), summary=summary(data),
                           count=lambda n, noun: count(n, noun, data["lang"]))


def render(engine: Any, lang: str = "en", fmt: str = "md") -> str:
    """The catalog of ``engine`` in ``lang`` as ``md``, ``html`` or ``json`` text."""
    data = catalog_data(engine, lang)
    if fmt == "md":
        return render_markdown(data)
    if fmt == "html":
        return render_html(data)
    if fmt == "json":
        return render_json(data)
    raise ValueError(f"unsupported format {fmt!r}; choose from {', '.join(FORMATS)}")
