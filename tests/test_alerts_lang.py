"""The language of alert messages: `kpiforge run --lang`, else the project's `alerting.lang`,
else its `lang`, else English; the French default messages and words come from package data."""

import json
from pathlib import Path

import pytest

from kpiforge.alerts._lang import alert_language, alert_strings, localise_number
from kpiforge.alerts._templates import DEFAULT_MESSAGE, render_message
from tests.test_cli_run_alerts import kpiforge, write_ads_project

EN = "Click-through rate (CTR) is critical: 0.50 % for 2026-09 (channel=display)."
FR = "Taux de clics (CTR) : statut critique, 0,50 % pour 2026-09 (channel=display)."


@pytest.mark.parametrize("settings, args, message", [
    ("", (), EN),
    ("", ("--lang", "fr"), FR),
    ("lang: fr\n", (), FR),
    ("alerting: {lang: fr}\n", (), FR),
    ("lang: en\nalerting: {lang: fr}\n", (), FR),        # alerting.lang before lang
    ("alerting: {lang: fr}\n", ("--lang", "en"), EN),     # the command line before both
    ("lang: fr\n", ("--lang", "en"), EN),
    ("lang: fr-FR\n", (), FR),                           # a regional code reads its language
    ("lang: de\n", (), EN),                              # no German strings: English
], ids=["default", "run-lang", "project-lang", "alerting-lang", "alerting-before-project",
        "cli-before-alerting", "cli-before-project", "regional", "unknown-language"])
def test_alert_message_language(tmp_path, settings, args, message):
    project = write_ads_project(tmp_path, settings)
    proc = kpiforge("run", "--kpi", "ctr", "--by", "channel", "--period", "2026-09", *args,
                    cwd=project)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in (project / "alerts.jsonl").read_text().splitlines()]
    assert [line["data"]["message"] for line in lines] == [message]


def test_the_english_default_is_the_package_data_one():
    assert DEFAULT_MESSAGE == alert_strings("en")["firing"]


@pytest.mark.parametrize("resolved, lang, expected", [
    (False, "en", "Reach is warning: 1,234.50 for 2026-09."),
    (False, "fr", "Portée : statut avertissement, 1 234,50 pour 2026-09."),
    (True, "en", "Reach recovered: 1,234.50 (warning) for 2026-09."),
    (True, "fr", "Portée : retour à la normale, 1 234,50 (statut avertissement) pour 2026-09."),
])
def test_default_messages(resolved, lang, expected):
    context = {"name": "Reach" if lang == "en" else "Portée", "status": "warning",
               "status_text": alert_strings(lang)["statuses"]["warning"], "lang": lang,
               "value_text": localise_number("1,234.50", lang), "period": "2026-09"}
    assert render_message(None, context, resolved=resolved) == expected


def test_a_kpi_template_is_used_whatever_the_language():
    assert render_message("{{ status }}!", {"status": "critical", "lang": "fr"}) == "critical!"


@pytest.mark.parametrize("explicit, alerting, project, lang", [
    (None, None, None, "en"),
    ("fr", {"lang": "en"}, {"lang": "en"}, "fr"),
    (None, {"lang": "fr"}, {"lang": "en"}, "fr"),
    (None, {}, {"lang": "fr"}, "fr"),
    (None, {"lang": ""}, {}, "en"),
    (None, {"lang": "fr-CA"}, {}, "fr"),
])
def test_alert_language_order(explicit, alerting, project, lang):
    assert alert_language(explicit, alerting, project) == lang
