"""What kpiforge's MetricFlow import and export share: the aggregation names on both sides, the
``{{ Dimension('entity__dim') }} = 'value'`` filters they read and write, and the notes that list
what could not be carried over (never dropped silently)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = ["AGG_FROM_MF", "AGG_TO_MF", "META_KEY", "Note", "is_identifier", "parse_filter",
           "render_filter", "report_markdown"]

# kpiforge agg -> MetricFlow agg. first / last have no MetricFlow agg: they are exported as a sum
# with a non_additive_dimension on the time dimension (min window: first, max: last).
AGG_TO_MF = {"sum": "sum", "count": "count", "count_distinct": "count_distinct", "min": "min",
             "max": "max", "avg": "average"}
# MetricFlow agg -> kpiforge agg; median and percentile have none (reported, not guessed).
AGG_FROM_MF = {"sum": "sum", "count": "count", "count_distinct": "count_distinct", "min": "min",
               "max": "max", "average": "avg", "sum_boolean": "sum"}
# Where kpiforge keeps, in a metric's config.meta, what MetricFlow has no place for.
META_KEY = "kpiforge"

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_LITERAL = r"(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?|true|false|TRUE|FALSE|True|False)"
_CONDITION = re.compile(
    r"^\s*\{\{\s*Dimension\(\s*['\"]([A-Za-z0-9_]+)['\"]\s*\)\s*\}\}\s*"
    rf"(?:=\s*({_LITERAL})|(?i:in)\s*\(\s*({_LITERAL}(?:\s*,\s*{_LITERAL})*)\s*\))\s*\Z")
_AND = re.compile(r"\s+(?i:and)\s+")
_ITEM = re.compile(_LITERAL)


@dataclass(frozen=True)
class Note:
    """Something not carried over: what it is (``metric x``) and why."""

    what: str
    reason: str


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return float(text) if "." in text else int(text)


def parse_filter(filters: Any) -> dict[str, Any] | str:
    """``{dimension reference: value or [values]}`` of a MetricFlow filter (a string or a list,
    all of which must hold), or why it is not a conjunction of simple equalities."""
    texts = [filters] if isinstance(filters, str) else filters
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return "a filter must be text or a list of texts"
    found: dict[str, Any] = {}
    for text in texts:
        for part in _conjuncts(text.strip()):
            match = _CONDITION.match(part)
            if match is None:
                return f"not a simple equality on a dimension: {part.strip()!r}"
            ref, one, many = match.groups()
            value = _literal(one) if one is not None else [_literal(v) for v in _ITEM.findall(many)]
            if ref in found:
                return f"{ref} is filtered twice"
            found[ref] = value[0] if isinstance(value, list) and len(value) == 1 else value
    return found


def _conjuncts(text: str) -> list[str]:
    """``text`` split at each AND outside a quoted value (``'a AND b'`` is one value)."""
    quoted = [False] * len(text)
    inside = False
    for i, char in enumerate(text):
        if char == "'":  # a doubled quote inside a value closes and reopens: still inside
            inside = not inside
        quoted[i] = inside
    parts, start = [], 0
    for match in _AND.finditer(text):
        if not quoted[match.start()]:
            parts.append(text[start:match.start()])
            start = match.end()
    parts.append(text[start:])
    return parts


def _render_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def render_filter(entity: str, filters: Mapping[str, Any]) -> str:
    """A kpiforge source filter as a MetricFlow one over ``entity``'s dimensions."""
    parts = []
    for column, value in filters.items():
        ref = f"{{{{ Dimension('{entity}__{column}') }}}}"
        if isinstance(value, (list, tuple)):
            parts.append(f"{ref} IN ({', '.join(_render_literal(v) for v in value)})")
        else:
            parts.append(f"{ref} = {_render_literal(value)}")
    return " AND ".join(parts)


def is_identifier(text: Any) -> bool:
    return isinstance(text, str) and _IDENT.match(text) is not None


def report_markdown(title: str, done: Sequence[str], notes: Sequence[Note]) -> str:
    """The report both commands print and write: what was carried over, then what was not."""
    lines = [f"# {title}", ""]
    lines += [f"- {line}" for line in done]
    lines += ["", "## Not carried over", ""]
    if notes:
        lines += [f"- **{n.what}**: {n.reason}" for n in notes]
    else:
        lines.append("Nothing: everything was carried over.")
    return "\n".join(lines) + "\n"
