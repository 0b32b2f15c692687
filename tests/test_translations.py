"""Every translatable text of the bundled catalog and of the UI has a French version.

What is translatable, and where its French text lives:

| text                          | French in                                            |
|-------------------------------|------------------------------------------------------|
| KPI label                     | the KPI file's `labels.fr`                           |
| KPI description               | the KPI file's `descriptions.fr`                     |
| input description             | the input's `descriptions.fr`                        |
| field description             | the field's `descriptions.fr`                        |
| parameter description         | the parameter's `descriptions.fr`                    |
| objective label, description  | definitions/objectives.yaml `labels.fr`, `descriptions.fr` |
| tag                           | engine/templates/tags.yaml `<tag>.fr`                |
| alert message, status words   | engine/templates/alert_messages.yaml `fr`            |
| catalog headings and words    | engine/templates/catalog_strings.yaml `fr`           |

One case per text, so a failure names the text that has no French version.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

import pytest

from kpiforge import Engine
from kpiforge._catalog_words import TAGS, UI
from kpiforge.alerts._lang import ALERT_STRINGS

ENGINE = Engine.load()
Case = tuple[str, Callable[[], Any]]


def _kpi_cases() -> Iterator[Case]:
    for kpi_id, d in sorted(ENGINE.definitions.items()):
        yield f"kpi-label:{kpi_id}", lambda d=d: d.labels.get("fr")
        yield f"kpi-description:{kpi_id}", lambda d=d: d.descriptions.get("fr")
        for name, spec in d.inputs.items():
            yield f"input:{kpi_id}.{name}", lambda s=spec: s.descriptions.get("fr")
        for name, spec in d.fields.items():
            yield f"field:{kpi_id}.{name}", lambda s=spec: s.descriptions.get("fr")
        for name, spec in d.parameters.items():
            if spec.description or spec.descriptions:
                yield f"parameter:{kpi_id}.{name}", lambda s=spec: s.descriptions.get("fr")
        for tag in d.tags:
            yield f"tag:{kpi_id}.{tag}", lambda t=tag: TAGS.get(t, {}).get("fr")


def _objective_cases() -> Iterator[Case]:
    for objective_id, o in sorted(ENGINE.objectives.items()):
        yield f"objective-label:{objective_id}", lambda o=o: o.labels.get("fr")
        yield f"objective-description:{objective_id}", lambda o=o: o.descriptions.get("fr")


def _keys(tree: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from _keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _lookup(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _string_cases() -> Iterator[Case]:
    # every English key has a French value: a string added in English only fails here
    for name, table in (("alert", ALERT_STRINGS), ("catalog", UI)):
        for key in _keys(table["en"]):
            yield f"{name}-string:{key}", lambda t=table, k=key: _lookup(t["fr"], k)


CASES = [*_kpi_cases(), *_objective_cases(), *_string_cases()]


@pytest.mark.parametrize("french", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_has_french_text(french):
    text = french()
    assert text not in (None, "", [], ()), "no French text"
    if isinstance(text, str):
        assert text.strip(), "blank French text"


def test_every_kind_of_text_is_covered():
    # the table above is enforced on the bundled catalog, not an empty list: each kind is present
    kinds = {case_id.split(":")[0] for case_id, _ in CASES}
    assert {"kpi-label", "kpi-description", "input", "tag", "objective-label",
            "objective-description", "alert-string", "catalog-string"} <= kinds


def test_tag_table_lists_only_tags_in_use_and_each_in_every_language():
    used = {t for d in ENGINE.definitions.values() for t in d.tags}
    assert set(TAGS) == used
    for tag, labels in TAGS.items():
        assert set(labels) == set(UI), tag
