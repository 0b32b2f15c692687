"""The catalog's words: UI strings per language (package data), counts, numbers, thresholds.

The strings live in ``templates/catalog_strings.yaml`` so a translation is a data change, not
a code change; they are read once, at import, with the safe loader.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Mapping

import yaml

from ._catalog_floor import lowest_value

__all__ = ["CATEGORY_ORDER", "LANGUAGES", "TAGS", "UI", "category_key", "category_label", "count",
           "format_amount", "format_number", "source_data", "summary", "tag_label", "target_data",
           "threshold_texts"]

# The funnel order of the standard catalog; other categories follow alphabetically.
CATEGORY_ORDER = ("awareness", "acquisition", "conversion", "retention", "seo")


def _load_strings() -> dict[str, dict[str, Any]]:
    raw = resources.files("kpiforge").joinpath("templates", "catalog_strings.yaml").read_text("utf-8")
    strings = yaml.safe_load(raw)
    for ui in strings.values():
        # pairs are unpacked (singular, plural) and (thousands, decimal): tuples, as before
        ui["nouns"] = {k: tuple(v) for k, v in ui["nouns"].items()}
        ui["number"] = tuple(ui["number"])
    return strings


UI: dict[str, dict[str, Any]] = _load_strings()
LANGUAGES = tuple(UI)


def _load_tags() -> dict[str, dict[str, str]]:
    raw = resources.files("kpiforge").joinpath("templates", "tags.yaml").read_text("utf-8")
    return dict(yaml.safe_load(raw) or {})


# tag id -> {language: label}: the labels of the bundled catalog's tags (templates/tags.yaml)
TAGS: dict[str, dict[str, str]] = _load_tags()


def tag_label(tag: str, lang: str) -> str:
    """A tag's label in ``lang``; a tag the table does not know (a team's own) is its id."""
    labels = TAGS.get(tag, {})
    return labels.get(lang) or labels.get("en") or tag


def count(n: int, noun: str, lang: str) -> str:
    """``1 KPI``, ``3 KPIs``; French treats 0 and 1 as singular, English only 1."""
    singular, plural = UI[lang]["nouns"][noun]
    one = n in (0, 1) if lang == "fr" else n == 1
    return f"{n} {singular if one else plural}"


def summary(data: Mapping[str, Any]) -> str:
    lang, counts = data["lang"], data["counts"]
    template = UI[lang]["summary" if counts["objectives"] else "summary_no_objectives"]
    return template.format(kpis=count(counts["kpis"], "kpi", lang),
                           categories=count(counts["categories"], "category", lang),
                           objectives=count(counts["objectives"], "objective", lang))


# -- numbers and thresholds in words -----------------------------------------------------------
def format_number(value: float, lang: str) -> str:
    thousands, decimal = UI[lang]["number"]
    if float(value).is_integer():
        text = f"{int(value):,}"
    else:
        text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return text.replace(",", "\0").replace(".", decimal).replace("\0", thousands)


def format_amount(value: float, unit: str, currency: str | None, lang: str) -> str:
    number = format_number(value, lang)
    suffix = {"percent": " %", "seconds": " s"}.get(unit, "")
    if unit == "currency":
        suffix = f" {currency}" if currency else ""
    return number + suffix


def source_data(sources: Any, ui: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Where a KPI's thresholds come from, the kind and levels in words (empty when not said)."""
    return [{"kind": s.kind, "kind_label": ui["sources"].get(s.kind, s.kind),
             "levels": list(s.levels), "level_labels": [ui["levels"][k] for k in s.levels],
             "text": s.text, "url": s.url} for s in sources]


def threshold_texts(definition: Any, lang: str = "en") -> list[str]:
    """The statuses a KPI can take, in words: ``["good ≥ 3 %", "ok between 2 % and 3 %", ...]``."""
    ui = UI[lang]
    level = ui["levels"]
    unit, currency = definition.unit.value, definition.currency
    amount = lambda v: format_amount(v, unit, currency, lang)  # noqa: E731
    good, warning, critical = (definition.thresholds.good, definition.thresholds.warning,
                               definition.thresholds.critical)
    direction = definition.direction.value
    if direction == "target":
        target = definition.target or 0.0
        band = definition.tolerance if definition.tolerance is not None else (good or 0.0)
        # a side below the lowest value the formula can give is never reached: not shown
        floor = lowest_value(definition)
        low_good = target - band if floor is None else max(target - band, floor)
        texts = [ui["target"].format(target=amount(target)),
                 ui["around"].format(level=level["good"], low=amount(low_good),
                                     high=amount(target + band), target=amount(target),
                                     distance=format_number(band, lang))]
        for name, distance in (("warning", warning), ("critical", critical)):
            if distance is None:
                continue
            # "distance > d" is "value < target - d": impossible when that is at or below the floor
            key = "above" if floor is not None and target - distance <= floor else "outside"
            texts.append(ui[key].format(level=level[name], low=amount(target - distance),
                                        high=amount(target + distance)))
        texts.append(ui["otherwise"].format(level=level["ok"]))
        return texts
    if good is None and warning is None and critical is None:
        return [ui["always_ok"]]
    better, worse = ("≥", "<") if direction == "higher_is_better" else ("≤", ">")
    texts = []
    if good is not None:
        texts.append(f"{level['good']} {better} {amount(good)}")
    edge = warning if warning is not None else critical
    if good is not None and edge is not None:
        low, high = sorted((good, edge))
        texts.append(ui["between"].format(level=level["ok"], low=amount(low), high=amount(high)))
    elif edge is not None:
        texts.append(f"{level['ok']} {better} {amount(edge)}")
    else:
        texts.append(f"{level['ok']} {worse} {amount(good)}")
    if warning is not None:
        texts.append(f"{level['warning']} {worse} {amount(warning)}")
    if critical is not None:
        texts.append(f"{level['critical']} {worse} {amount(critical)}")
    return texts


def category_key(category: str) -> tuple[int, str]:
    try:
        return (CATEGORY_ORDER.index(category), category)
    except ValueError:
        return (len(CATEGORY_ORDER), category)


def category_label(category: str, lang: str) -> str:
    return UI[lang]["categories"].get(category) or category.replace("_", " ").capitalize()


def target_data(objective: Any, definitions: Mapping[str, Any], lang: str) -> dict[str, Any] | None:
    """An objective's SMART target as catalog data, with ``text`` saying it in ``lang``
    (``Target: Cost per acquisition 85 EUR, from 101 EUR on 2026-01-01, by 2026-12-31``)."""
    target = objective.target
    if target is None:
        return None
    ui = UI[lang]
    definition = definitions.get(target.kpi)
    unit = definition.unit.value if definition is not None else ""
    currency = definition.currency if definition is not None else None
    amount = lambda v: format_amount(v, unit, currency, lang)  # noqa: E731
    label = definition.label(lang) if definition is not None else target.kpi
    parts = [f"{ui['smart_target']} {label} {amount(target.value)}"]
    if target.baseline is not None:
        start = ui["smart_on"].format(start=target.start) if target.start else ""
        parts.append(ui["smart_from"].format(baseline=amount(target.baseline)) + start)
    parts.append(ui["smart_by"].format(deadline=target.deadline) if target.deadline
                 else ui["smart_no_deadline"])
    return {"kpi": target.kpi, "kpi_label": label, "value": target.value,
            "baseline": target.baseline, "start": target.start, "deadline": target.deadline,
            "owner": target.owner, "text": ", ".join(parts)}
