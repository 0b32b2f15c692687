"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): from the
overview to a KPI page by clicking a tile, then changing the grain filter and the language.
Skips, like tests/test_catalog_browser.py, when Chromium or playwright is not installed."""

from __future__ import annotations

import pytest

from kpiforge import Project
from tests.report_project import write_report_project
from tests.serve_server import running
from tests.test_catalog_browser import chromium_path

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running(Project.load(write_report_project(tmp_path_factory.mktemp("sb")))) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright not installed: pip install playwright")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_overview_to_kpi_then_grain_and_language(server, browser):
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.goto(server + "/?grain=month")
    assert page.locator("h2", has_text="Reach more people").count() == 1
    page.click('a.tile[data-kpi="ctr"]')
    page.wait_for_url("**/kpi/ctr**")
    assert page.locator("h1").inner_text() == "Click-through rate"
    months = page.locator("#trend tr.point td:first-child").all_inner_texts()
    assert months[-1] == "2026-10" and len(months) == 13
    with page.expect_navigation():
        page.select_option("#grain", "quarter")
    assert "grain=quarter" in page.url
    quarters = page.locator("#trend tr.point td:first-child").all_inner_texts()
    assert quarters[-1] == "2026-Q4" and all("-Q" in q for q in quarters)
    page.click('a.lang[data-lang="fr"]')
    page.wait_for_url("**lang=fr**")
    assert page.locator("h1").inner_text() == "Taux de clic"
    assert "Tendance" in page.locator("#trend h2").inner_text()
    assert "grain=quarter" in page.url  # the filters survive the change of language
    page.close()
