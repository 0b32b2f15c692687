"""`kpiforge catalog`: Markdown, JSON and self-contained HTML of every KPI, in English and French."""

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from kpiforge import Engine, InputSpec
from kpiforge._catalog import catalog_data, graph_layout, render, threshold_texts
from kpiforge._catalog_floor import lowest_value

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "tests" / "fixtures" / "catalog"
LTV_EDGES = [{"from": "cpa", "to": "ltv_cac_ratio"}, {"from": "ltv", "to": "ltv_cac_ratio"},
             {"from": "churn_rate", "to": "ltv"}]


def kpiforge(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def bundled():
    return Engine.load()


@pytest.fixture(scope="module")
def fixture_engine():
    return Engine.load(CATALOG)


# -- the bundled catalog -------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_markdown_has_every_kpi_in_the_language_and_the_ltv_cac_graph(bundled, lang):
    proc = kpiforge("catalog", "--lang", lang)
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    for kpi in bundled.definitions.values():
        assert f"#### {kpi.label(lang)}\n" in md, kpi.id
        assert f'<a id="kpi-{kpi.id}"></a>' in md
    block = re.search(r"```mermaid\ngraph LR\n(.*?)```", md, re.S)
    assert block, "no Mermaid block"
    for edge in LTV_EDGES:
        assert f"  {edge['from']} --> {edge['to']}\n" in block.group(1)
    assert "- `ltv_cac_ratio` ← `cpa`, `ltv`" in md
    assert "- `ltv` ← `churn_rate`" in md


def test_french_markdown_uses_french_labels_headings_and_thresholds(bundled):
    md = kpiforge("catalog", "--lang", "fr").stdout
    for heading in ("# Catalogue des KPI", "## KPI par catégorie", "## KPI par objectif",
                    "## Graphe des dépendances", "### Notoriété", "### Fidélisation"):
        assert f"\n{heading}\n" in "\n" + md, heading
    assert "#### Taux de clics (CTR)" in md and "#### Click-through rate (CTR)" not in md
    assert "bon ≥ 3 %" in md and "avertissement < 2 %" in md and "critique < 1 %" in md
    assert "| Formule | `clicks / impressions * 100` |" in md
    # the French description, not the English one
    assert bundled["ctr"].descriptions["fr"].split(".")[0] in md
    assert "### Génération de leads" in md


def test_english_markdown_words(bundled):
    md = render(bundled, "en", "md")
    assert "good ≥ 3 %" in md and "ok between 2 % and 3 %" in md and "warning < 2 %" in md
    assert "## KPIs by category" in md and "## KPIs by objective" in md


def test_json_is_stable_and_complete(bundled):
    proc = kpiforge("catalog", "--format", "json", "--lang", "fr")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == ["format", "lang", "title", "counts", "categories", "objectives", "kpis", "graph"]
    assert data["format"] == "kpiforge-catalog/v1" and data["lang"] == "fr"
    assert sorted(k["id"] for k in data["kpis"]) == sorted(bundled.definitions)
    assert sorted(k for c in data["categories"] for k in c["kpis"]) == sorted(bundled.definitions)
    by_id = {k["id"]: k for k in data["kpis"]}
    assert by_id["ctr"]["label"] == "Taux de clics (CTR)"
    assert by_id["ctr"]["thresholds"] == {"good": 3.0, "warning": 2.0, "critical": 1.0}
    assert by_id["ctr"]["thresholds_text"][0] == "bon ≥ 3 %"
    assert set(by_id["ltv_cac_ratio"]) >= {
        "id", "label", "labels", "description", "category", "objectives", "owner", "status",
        "version", "vanity", "formula", "inputs", "unit", "currency", "direction", "thresholds",
        "thresholds_text", "depends_on", "used_by", "inputs_needed"}
    assert by_id["ltv_cac_ratio"]["depends_on"] == ["cpa", "ltv"]
    assert by_id["churn_rate"]["used_by"] == ["ltv"]
    assert "new_customers" in by_id["ltv_cac_ratio"]["inputs_needed"]
    for edge in LTV_EDGES:
        assert edge in data["graph"]["edges"]
    assert [o["id"] for o in data["objectives"]] == list(bundled.objectives)
    assert all(o["label"] == bundled.objectives[o["id"]].labels["fr"] for o in data["objectives"])
    # same input, same bytes: a committed catalog only changes when the definitions do
    assert kpiforge("catalog", "--format", "json", "--lang", "fr").stdout == proc.stdout


def test_html_is_self_contained(bundled):
    html = render(bundled, "fr", "html")
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    assert re.findall(r"url\(([^)]*)\)", html) == ["#arrow"] * len(re.findall(r"marker-end", html))
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!#)""", html)
    assert '<html lang="fr">' in html and "<svg" in html
    for kpi in bundled.definitions.values():
        assert f'id="kpi-{kpi.id}"' in html


def test_output_dir_gets_one_file_per_format(tmp_path):
    for fmt, name in (("md", "catalog.md"), ("html", "catalog.html"), ("json", "catalog.json")):
        proc = kpiforge("catalog", "-d", str(CATALOG), "--format", fmt, "-o", str(tmp_path / "out"))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == ""
        assert (tmp_path / "out" / name).stat().st_size > 500
    assert json.loads((tmp_path / "out" / "catalog.json").read_text())["counts"]["kpis"] == 6


# -- fixture catalog: thresholds in words, dependency chain, escaping -----------------------------
@pytest.mark.parametrize("kpi, lang, texts", [
    ("signup_rate", "en", ["good ≥ 3 %", "ok between 2 % and 3 %", "warning < 2 %", "critical < 1 %"]),
    ("signup_rate", "fr", ["bon ≥ 3 %", "correct entre 2 % et 3 %", "avertissement < 2 %", "critique < 1 %"]),
    ("cost_per_signup", "en", ["good ≤ 10 EUR", "ok between 10 EUR and 25 EUR", "warning > 25 EUR",
                               "critical > 50 EUR"]),
    ("posting_rhythm", "en", ["target 3", "good from 2 to 4 (3 ± 1)", "warning < 1 or > 5",
                              "critical < -1 or > 7", "ok otherwise"]),
    ("posting_rhythm", "fr", ["cible 3", "bon de 2 à 4 (3 ± 1)", "avertissement < 1 ou > 5",
                              "critique < -1 ou > 7", "correct sinon"]),
    ("visits", "en", ["no thresholds: always ok"]),
    ("visits", "fr", ["aucun seuil : toujours correct"]),
])
def test_thresholds_in_words(fixture_engine, kpi, lang, texts):
    assert threshold_texts(fixture_engine[kpi], lang) == texts


# A frequency (impressions / reach) cannot be negative: "more than 4 away from 3" is only "> 7".
# The fixture's posting_rhythm has inputs without a unit, so its floor is unknown and both sides
# stay (above).
@pytest.mark.parametrize("lang, texts", [
    ("en", ["target 3", "good from 2 to 4 (3 ± 1)", "warning < 1 or > 5", "critical > 7", "ok otherwise"]),
    ("fr", ["cible 3", "bon de 2 à 4 (3 ± 1)", "avertissement < 1 ou > 5", "critique > 7", "correct sinon"]),
])
def test_target_thresholds_never_show_impossible_values(bundled, lang, texts):
    assert threshold_texts(bundled["frequency"], lang) == texts


def _with(definition, formula, **units):
    inputs = {name: InputSpec(name, unit=unit, range=rng)
              for name, (unit, rng) in units.items()}
    return replace(definition, formula=formula, inputs=inputs)


@pytest.mark.parametrize("formula, units, floor", [
    ("impressions / reach", {"impressions": ("count", None), "reach": ("count", None)}, 0.0),
    ("seconds_total / sessions * 100", {"seconds_total": ("seconds", None), "sessions": ("count", None)}, 0.0),
    ("margin * 2", {"margin": ("ratio", (0, 1))}, 0.0),
    ("margin * 2", {"margin": ("ratio", (-1, 1))}, None),     # the declared range allows negatives
    ("margin * 2", {"margin": ("ratio", None)}, None),        # a ratio may be negative
    ("a - b", {"a": ("count", None), "b": ("count", None)}, None),
    ("a / b", {"a": (None, None), "b": ("count", None)}, None),  # no unit: not known
    ("-a", {"a": ("count", None)}, None),
    ("a * -1", {"a": ("count", None)}, None),
    ("abs(a)", {"a": ("count", None)}, None),                # functions are not looked into
    ("other_kpi / a", {"a": ("count", None)}, None),         # another KPI: not an input
])
def test_lowest_value(bundled, formula, units, floor):
    assert lowest_value(_with(bundled["frequency"], formula, **units)) == floor


def test_french_numbers_use_a_decimal_comma(bundled):
    data = catalog_data(bundled, "fr")
    texts = {k["id"]: k["thresholds_text"] for k in data["kpis"]}
    assert any("2,5" in t for kpi in texts.values() for t in kpi)
    assert not any(re.search(r"\d\.\d", t) for kpi in texts.values() for t in kpi)


def test_dependency_chain_depths_and_layout(fixture_engine):
    data = catalog_data(fixture_engine, "en")
    assert {n["id"]: n["depth"] for n in data["graph"]["nodes"]} == {
        "cost_per_signup": 0, "signup_rate": 0, "value_per_signup": 1, "value_to_cost": 2}
    assert data["graph"]["edges"] == [
        {"from": "signup_rate", "to": "value_per_signup"},
        {"from": "cost_per_signup", "to": "value_to_cost"},
        {"from": "value_per_signup", "to": "value_to_cost"}]
    layout = graph_layout(data)
    boxes = {n["id"]: n for n in layout["nodes"]}
    assert boxes["signup_rate"]["x"] < boxes["value_per_signup"]["x"] < boxes["value_to_cost"]["x"]
    # the edge that skips a column runs straight through a free slot of that column
    skip = next(e for e in layout["edges"] if e["from"] == "cost_per_signup")
    y = float(re.search(r" L[\d.]+,([\d.]+)", skip["d"]).group(1))
    middle = boxes["value_per_signup"]
    assert not middle["y"] <= y <= middle["y"] + middle["height"]


def test_markdown_nested_dependency_list(fixture_engine):
    md = render(fixture_engine, "fr", "md")
    assert ("- [Ratio valeur / coût](#kpi-value_to_cost) `value_to_cost`\n"
            "  - [Coût par inscription](#kpi-cost_per_signup) `cost_per_signup`\n"
            "  - [Valeur par inscription](#kpi-value_per_signup) `value_per_signup`\n"
            "    - [Taux d’inscription](#kpi-signup_rate) `signup_rate`\n") in md
    assert "### Croissance de l’audience" in md
    assert "| Indicateur de vanité | oui |" in md  # visits is flagged
    assert "| Responsable | web team |" in md and "| Version | 2 |" in md
    assert "| Devise | EUR |" in md and "| Statut | brouillon |" in md


def test_text_from_yaml_is_escaped(tmp_path):
    shutil.copytree(CATALOG, tmp_path / "kpis")
    path = tmp_path / "kpis" / "traffic" / "visits.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "fr: Visites}", 'fr: "<img src=x onerror=alert(1)> & <b>Visites</b>"}').replace(
        "fr: Les visites du site", "fr: <script>alert(1)</script> | Les visites du site")
    path.write_text(text, encoding="utf-8")
    engine = Engine.load(tmp_path / "kpis")
    html = render(engine, "fr", "html")
    assert "<img" not in html and "<script" not in html and "<b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;b&gt;Visites&lt;/b&gt;" in html
    md = render(engine, "fr", "md")
    assert "<script" not in md and "<img" not in md
    assert "&lt;script>alert(1)&lt;/script> \\| Les visites" in md


def test_unknown_language_is_a_usage_error():
    proc = kpiforge("catalog", "--lang", "de")
    assert proc.returncode == 2


def test_a_catalog_without_objectives_says_so_in_good_grammar(tmp_path):
    text = (CATALOG / "traffic" / "visits.yaml").read_text(encoding="utf-8")
    (tmp_path / "visits.yaml").write_text(text.replace("objectives: [growth]\n", ""), encoding="utf-8")
    engine = Engine.load(tmp_path)
    md = render(engine, "en", "md")
    assert "\n1 KPI in 1 category.\n" in md and "No objectives are defined." in md
    assert "No KPI depends on another one." in md
    html = render(engine, "fr", "html")
    assert "1 KPI dans 1 catégorie." in html and "Aucun objectif n’est défini." in html
    assert "<svg" not in html


def test_the_page_and_its_strings_are_package_data_and_every_module_is_small():
    import yaml

    templates = ROOT / "engine" / "templates"
    assert (templates / "catalog.html.j2").read_text().startswith("<!DOCTYPE html>")
    strings = yaml.safe_load((templates / "catalog_strings.yaml").read_text())
    assert set(strings) == {"en", "fr"}
    assert set(strings["en"]) == set(strings["fr"])  # no language misses a string
    for path in (ROOT / "engine").glob("_catalog*.py"):
        assert len(path.read_text().splitlines()) <= 400, path.name
