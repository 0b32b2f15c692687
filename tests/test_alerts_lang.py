"""The language of alert messages: `kpiforge run --lang`, else the project's `alerting.lang`,
else its `lang`, else English; the French default messages and words come from package data."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kpiforge.alerts._lang import alert_language, alert_strings, localise_number
from kpiforge.alerts._templates import DEFAULT_MESSAGE, render_message

EN = "Click-through rate (CTR) is critical: 0.50 % for 2026-09 (channel=display)."
FR = "Taux de clics (CTR) : statut critique, 0,50 % pour 2026-09 (channel=display)."


def kpiforge(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def make_project(tmp_path: Path, settings: str) -> Path:
    rows = ["date,channel,impressions,clicks"]
    for day in range(1, 31):
        rows.append(f"2026-09-{day:02d},search,1000,40")   # 4 %: good
        rows.append(f"2026-09-{day:02d},display,1000,5")   # 0.5 %: critical
    (tmp_path / "ads.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "kpiforge.yaml").write_text(settings + textwrap.dedent("""
        state: state/alerts.db
        sources:
          ads:
            type: csv
            path: ads.csv
            time: date
            dimensions: [channel]
            inputs:
              impressions: {agg: sum}
              clicks: {agg: sum}
        sinks:
          log: {type: file, path: alerts.jsonl}
    """))
    return tmp_path


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
    project = make_project(tmp_path, settings)
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
