"""The language of alert messages: default templates and words per language, as package data.

The strings live in ``templates/alert_messages.yaml`` so a translation is a data change; they
are read once, at import, with the safe loader. A language the file does not have (the project
schema accepts any ``xx`` or ``xx-YY`` code) falls back to its base language, then to English.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Mapping

import yaml

__all__ = ["ALERT_STRINGS", "alert_language", "alert_strings", "localise_number"]


def _load() -> dict[str, dict[str, Any]]:
    raw = resources.files("kpiforge").joinpath("templates", "alert_messages.yaml").read_text("utf-8")
    return dict(yaml.safe_load(raw))


ALERT_STRINGS: dict[str, dict[str, Any]] = _load()


def alert_strings(lang: str | None) -> Mapping[str, Any]:
    """The strings of ``lang`` (``fr-FR`` reads ``fr``), English when it has none."""
    code = (lang or "en").split("-")[0].lower()
    return ALERT_STRINGS.get(code) or ALERT_STRINGS["en"]


def alert_language(explicit: str | None, alerting: Mapping[str, Any] | None,
                   project: Mapping[str, Any] | None) -> str:
    """``kpiforge run --lang`` when given, else ``alerting.lang``, else the project's ``lang``;
    the base language (``fr-FR`` is ``fr``), since labels and strings are kept per language."""
    for candidate in (explicit, (alerting or {}).get("lang"), (project or {}).get("lang")):
        if isinstance(candidate, str) and candidate:
            return candidate.split("-")[0].lower()
    return "en"


def localise_number(text: str, lang: str | None) -> str:
    """``1,234.50 %`` (how values are formatted) with the separators of ``lang``."""
    thousands, decimal = alert_strings(lang)["number"]
    if (thousands, decimal) == (",", "."):
        return text
    return text.replace(",", "\0").replace(".", decimal).replace("\0", thousands)
