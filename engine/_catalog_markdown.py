"""The catalog as Markdown: tables per KPI, a Mermaid graph, every cell escaped."""

from __future__ import annotations

import re
from typing import Any, Mapping

from ._catalog_layout import feeding_trees
from ._catalog_words import UI, count, summary

__all__ = ["render_markdown"]

_MERMAID_RESERVED = {"end", "graph", "subgraph", "style", "class", "classDef", "click",
                     "linkStyle", "default", "direction"}


_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")
_BLOCK_START = re.compile(r"^(?=[#>+*-])")
_NUMBERED = re.compile(r"^(\d+)([.)]\s)")


def _md(text: Any) -> str:
    """Text safe inside a Markdown table cell or paragraph: no pipes, no line breaks, no HTML.

    Only what Markdown would interpret is escaped, so "< 2 %" stays readable in the raw file.
    """
    text = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return _NUMBERED.sub(r"\1\\\2", _BLOCK_START.sub("\\\\", _HTML_START.sub("&lt;", text)))


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text.replace(chr(10), ' ')}{pad}{fence}"


def _source(source: Mapping[str, Any]) -> str:
    levels = f" ({_md(', '.join(source['level_labels']))})" if source["level_labels"] else ""
    text = _md(source["kind_label"]) + levels + (f": {_md(source['text'])}" if source["text"] else "")
    # the schema allows only http(s) URLs, so the link cannot run anything
    return text + (f" ([{_md(source['url'])}]({source['url']}))" if source["url"] else "")


def _mermaid_id(kpi: str) -> str:
    return f"{kpi}_kpi" if kpi in _MERMAID_RESERVED else kpi


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", " ") + '"'


def _markdown_smart(objective: Mapping[str, Any], ui: Mapping[str, Any]) -> list[str]:
    """The target and owner lines of an objective, each a paragraph (nothing without them)."""
    target = objective.get("target")
    owner = (target or {}).get("owner") or objective.get("owner")
    lines = [f"**{_md(target['text'])}**", ""] if target else []
    return lines + ([_md(ui["smart_owner"].format(owner=owner)), ""] if owner else [])


def render_markdown(data: Mapping[str, Any]) -> str:
    ui = UI[data["lang"]]
    by_id = {k["id"]: k for k in data["kpis"]}
    link = lambda kpi: f"[{_md(by_id[kpi]['label'])}](#kpi-{kpi})" if kpi in by_id else _code(kpi)  # noqa: E731
    out: list[str] = [f"# {ui['title']}", "",
                      summary(data), "", f"## {ui['contents']}", "",
                      f"- [{ui['by_category']}](#by-category)"]
    for category in data["categories"]:
        out.append(f"  - [{_md(category['label'])}](#category-{category['id']}) "
                   f"({count(len(category['kpis']), 'kpi', data['lang'])})")
    out.append(f"- [{ui['by_objective']}](#by-objective)")
    for objective in data["objectives"]:
        out.append(f"  - [{_md(objective['label'])}](#objective-{objective['id']})")
    out += [f"- [{ui['graph']}](#dependency-graph)", ""]

    out += ['<a id="by-category"></a>', "", f"## {ui['by_category']}", ""]
    for category in data["categories"]:
        out += [f'<a id="category-{category["id"]}"></a>', "", f"### {_md(category['label'])}", ""]
        for kpi_id in category["kpis"]:
            out += _markdown_kpi(by_id[kpi_id], ui, link)

    out += ['<a id="by-objective"></a>', "", f"## {ui['by_objective']}", ""]
    if not data["objectives"]:
        out += [ui["no_objectives"], ""]
    for objective in data["objectives"]:
        out += [f'<a id="objective-{objective["id"]}"></a>', "", f"### {_md(objective['label'])}", ""]
        if objective["description"]:
            out += [_md(objective["description"]), ""]
        out += _markdown_smart(objective, ui)
        for kpi in objective["kpis"]:
            item = by_id.get(kpi)
            extra = f" — {_md(item['category_label'])}" if item else ""
            vanity = f" ({_md(ui['vanity'])})" if item and item["vanity"] else ""
            out.append(f"- {link(kpi)} {_code(kpi)}{extra}{vanity}")
        out.append("")

    out += ['<a id="dependency-graph"></a>', "", f"## {ui['graph']}", ""]
    edges = data["graph"]["edges"]
    if not edges:
        out += [ui["graph_none"], ""]
    else:
        out += [ui["graph_intro"], "", "```mermaid", "graph LR"]
        for node in data["graph"]["nodes"]:
            out.append(f"  {_mermaid_id(node['id'])}[{_mermaid_label(node['label'])}]")
        for edge in edges:
            out.append(f"  {_mermaid_id(edge['from'])} --> {_mermaid_id(edge['to'])}")
        out += ["```", "", f"### {ui['graph_list']}", ""]

        def walk(node: Mapping[str, Any], level: int) -> None:
            out.append(f"{'  ' * level}- {link(node['id'])} {_code(node['id'])}")
            for child in node["children"]:
                walk(child, level + 1)

        for root in feeding_trees(data):
            walk(root, 0)
        out.append("")
        for kpi in (n["id"] for n in data["graph"]["nodes"]):
            if by_id[kpi]["depends_on"]:
                out.append(f"- `{kpi}` ← " + ", ".join(f"`{d}`" for d in by_id[kpi]["depends_on"]))
        out.append("")
    out += ["---", "", f"*{ui['generated']}*", ""]
    return "\n".join(out)


def _markdown_kpi(kpi: Mapping[str, Any], ui: Mapping[str, Any], link: Any) -> list[str]:
    none = ui["none"]
    out = [f'<a id="kpi-{kpi["id"]}"></a>', "", f"#### {_md(kpi['label'])}", ""]
    if kpi["vanity"]:
        out += [f"> ⚠ {_md(ui['vanity_note'])}", ""]
    if kpi["description"]:
        out += [_md(kpi["description"]), ""]
    inputs = "<br>".join(f"{_code(i['name'])}" + (f" — {_md(i['description'])}" if i["description"] else "")
                         + (f" ({_code(i['measure'])})" if i.get("measure") else "")
                         for i in kpi["inputs"]) or ui["no_inputs"]
    rows = [
        (ui["id"], _code(kpi["id"])),
        (ui["formula"], _code(kpi["formula"])),
        (ui["inputs"], inputs),
        (ui["inputs_needed"], ", ".join(_code(i) for i in kpi["inputs_needed"]) or none),
        (ui["unit"], _md(kpi["unit_label"])),
        (ui["currency"], _md(kpi["currency"] or none)),
        (ui["direction"], _md(kpi["direction_label"])),
        (ui["thresholds"], "<br>".join(_md(t) for t in kpi["thresholds_text"])),
        *([(ui["threshold_source"], "<br>".join(_source(s) for s in kpi["threshold_sources"]))]
          if kpi.get("threshold_sources") else []),
        (ui["objectives"], ", ".join(f"[{_md(o['label'])}](#objective-{o['id']})" for o in kpi["objectives"]) or none),
        (ui["owner"], _md(kpi["owner"] or none)),
        *([(ui["extends"], _md(kpi["extends_text"]))] if kpi["extends"] else []),
        (ui["status"], _md(kpi["status_label"])),
        *([(ui["replaced_by"], link(kpi["replaced_by"]))] if kpi.get("replaced_by") else []),
        (ui["version"], str(kpi["version"])),
        (ui["vanity"], ui["yes"] if kpi["vanity"] else ui["no"]),
        (ui["depends_on"], ", ".join(link(d) for d in kpi["depends_on"]) or none),
        (ui["used_by"], ", ".join(link(d) for d in kpi["used_by"]) or none),
        (ui["tags"], ", ".join(_md(t) for t in kpi["tag_labels"]) or none),
    ]
    out += [f"| {ui['field']} | {ui['value']} |", "|---|---|"]
    out += [f"| {name} | {value} |" for name, value in rows]
    out.append("")
    return out
