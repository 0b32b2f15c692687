"""The dependency graph of the HTML catalog laid out for an inline SVG (no script, no URL)."""

from __future__ import annotations

import textwrap
from typing import Any, Mapping

__all__ = ["feeding_trees", "graph_layout"]

_NODE_WIDTH = 230
_COLUMN_GAP = 90
_ROW_GAP = 22
_LINE_HEIGHT = 16
_WRAP = 30
_WAYPOINT = 8
_PALETTE = ("#dbeafe", "#dcfce7", "#fef3c7", "#fce7f3", "#ede9fe", "#e0f2fe", "#fee2e2", "#f1f5f9")


def graph_layout(data: Mapping[str, Any]) -> dict[str, Any]:
    """Positions for the SVG: one column per dependency depth, dependencies on the left.

    A layered (Sugiyama-style) layout: an edge that skips columns gets a slot of its own in
    each column it crosses, so it runs between boxes instead of through one, and each column
    is ordered by the mean position of what feeds it, which keeps most edges uncrossed.
    """
    by_id = {k["id"]: k for k in data["kpis"]}
    colours = {c["id"]: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(data["categories"])}
    depth = {n["id"]: n["depth"] for n in data["graph"]["nodes"]}
    edges = [(e["from"], e["to"]) for e in data["graph"]["edges"]]
    # an item is a KPI id, or (edge number, depth) for a point where an edge crosses a column
    columns: dict[int, list[Any]] = {}
    feeders: dict[Any, list[Any]] = {}
    for node in data["graph"]["nodes"]:
        columns.setdefault(node["depth"], []).append(node["id"])
        feeders.setdefault(node["id"], [])
    for number, (source, target) in enumerate(edges):
        previous: Any = source
        for d in range(depth[source] + 1, depth[target]):
            columns.setdefault(d, []).append((number, d))
            feeders[(number, d)] = [previous]
            previous = (number, d)
        feeders[target].append(previous)
    rank: dict[Any, float] = {}
    for d in sorted(columns):
        def key(item: Any) -> tuple[float, str]:
            fed = feeders[item]
            centre = sum(rank.get(f, 0.0) for f in fed) / len(fed) if fed else 0.0
            return (centre, item if isinstance(item, str) else f"~{item[0]:06d}")
        columns[d].sort(key=key)
        for i, item in enumerate(columns[d]):
            rank[item] = float(i)

    boxes: dict[str, dict[str, Any]] = {}
    waypoints: dict[Any, float] = {}
    heights: dict[int, float] = {}
    x_of = lambda d: 20 + d * (_NODE_WIDTH + _COLUMN_GAP)  # noqa: E731
    for d, column in columns.items():
        y = 0.0
        for item in column:
            if not isinstance(item, str):
                waypoints[item] = y + _WAYPOINT / 2
                y += _WAYPOINT + _ROW_GAP
                continue
            lines = textwrap.wrap(by_id[item]["label"], _WRAP)[:3] or [item]
            height = _LINE_HEIGHT * (len(lines) + 1) + 14
            boxes[item] = {"id": item, "lines": lines, "x": x_of(d), "y": y,
                           "width": _NODE_WIDTH, "height": height,
                           "fill": colours.get(by_id[item]["category"], _PALETTE[-1]),
                           "title": f"{by_id[item]['label']} ({item})"}
            y += height + _ROW_GAP
        heights[d] = y - _ROW_GAP
    total = max(heights.values(), default=0.0)
    for d, column in columns.items():
        offset = 20 + (total - heights[d]) / 2  # centre short columns
        for item in column:
            if isinstance(item, str):
                boxes[item]["y"] += offset
            else:
                waypoints[item] += offset

    paths = []
    for number, (source, target) in enumerate(edges):
        a, b = boxes[source], boxes[target]
        points = [(a["x"] + a["width"], a["y"] + a["height"] / 2)]
        for d in range(depth[source] + 1, depth[target]):
            y = waypoints[(number, d)]
            points += [(x_of(d), y), (x_of(d) + _NODE_WIDTH, y)]
        points.append((b["x"] - 4, b["y"] + b["height"] / 2))
        d_attr = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
        for i in range(1, len(points)):
            (x1, y1), (x2, y2) = points[i - 1], points[i]
            if i % 2:  # across a gap between columns: a smooth S-curve
                bend = (x2 - x1) / 2
                d_attr += f" C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
            else:  # straight through a column, in the slot kept free for it
                d_attr += f" L{x2:.1f},{y2:.1f}"
        paths.append({"from": source, "to": target, "d": d_attr})
    count = len(columns)
    width = 40 + count * _NODE_WIDTH + max(count - 1, 0) * _COLUMN_GAP
    return {"nodes": [boxes[k] for k in boxes], "edges": paths, "width": width, "height": total + 40}


def feeding_trees(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The graph as nested lists: each KPI that feeds nothing, then what feeds it, recursively."""
    by_id = {k["id"]: k for k in data["kpis"]}
    nodes = [n["id"] for n in data["graph"]["nodes"]]
    roots = [k for k in nodes if not by_id[k]["used_by"]]

    def tree(kpi: str, seen: frozenset[str]) -> dict[str, Any]:
        children = [tree(d, seen | {kpi}) for d in by_id[kpi]["depends_on"]
                    if d in by_id and d not in seen]
        return {"id": kpi, "label": by_id[kpi]["label"], "children": children}

    return [tree(r, frozenset()) for r in sorted(roots, key=lambda k: (-by_id[k]["depth"], k))]
