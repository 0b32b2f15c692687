"""The English and French HTML reports in a real headless Chromium, at a phone's width: every
chart renders, nothing is wider than the screen, nothing is fetched, and a screenshot is a page.

The report has no script of its own; the test adds one at the end of a copy of the page that
measures the laid-out page and writes what it found into the DOM Chromium dumps. Headless
Chromium keeps its window at least 500 pixels wide, so the page is laid out in a 390-pixel
frame (``srcdoc``: same origin as the page holding it, whose DOM is dumped). A control page
that is too wide proves the measure can fail. Chromium is used as in
tests/test_catalog_browser.py (and skips the same way when it is not installed).
"""

import html
import json
import struct
from pathlib import Path

import pytest

from tests.report_project import write_report, write_report_project
from tests.test_catalog_browser import chromium, chromium_path, page_requests

pytest.importorskip("altair")
pytest.importorskip("vl_convert")

PHONE = (390, 844)
PROBE = """<script>
(function () {
  var charts = Array.prototype.slice.call(document.querySelectorAll("svg[data-chart]"));
  var drawn = charts.filter(function (svg) {
    var box = svg.getBoundingClientRect();
    return box.width > 100 && box.height > 30 && box.right <= window.innerWidth
      && svg.querySelector("path, line, rect") !== null;
  });
  parent.document.body.setAttribute("data-probe", JSON.stringify({
    innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
    charts: charts.length, drawn: drawn.length,
    figures: document.querySelectorAll("figure").length}));
})();
</script>"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    chromium_path()
    root = tmp_path_factory.mktemp("browser")
    project = write_report_project(root)
    # annotations on the charts and in the Context section: one a single 500-letter word,
    # which must wrap rather than widen the page
    from kpiforge import Project

    loaded = Project.load(project)
    loaded.annotate("x" * 500, period="2026-10-14", kpis="ctr")
    loaded.annotate("Spring campaign <b>not bold</b>", period="2026-04")
    return {lang: write_report(project, root / "out", "--grain", "month", "--period", "2026-10",
                               "--by", "channel", "--lang", lang) for lang in ("en", "fr")}


def probe(page: Path, tmp_path: Path, name: str) -> dict:
    probed = tmp_path / f"probed-{name}.html"
    inner = page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>")
    probed.write_text(f'<!DOCTYPE html><body style="margin:0"><iframe style="border:0; '
                      f'width:{PHONE[0]}px; height:{PHONE[1]}px" srcdoc="{html.escape(inner)}">'
                      "</iframe></body>", encoding="utf-8")
    proc = chromium(tmp_path, name, "--window-size=800,900", "--dump-dom", probed.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    marker = 'data-probe="'
    assert marker in proc.stdout, proc.stdout[-2000:]
    raw = proc.stdout.split(marker, 1)[1].split('"', 1)[0]
    return json.loads(raw.replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_every_chart_renders_and_nothing_overflows_on_a_phone(reports, tmp_path, lang) -> None:
    found = probe(reports[lang], tmp_path, lang)
    assert found["innerWidth"] == PHONE[0], found  # the measure is taken at the phone's width
    assert found["charts"] == found["figures"] > 0, found
    assert found["drawn"] == found["charts"], found
    assert found["scrollWidth"] <= found["innerWidth"], found


def test_the_overflow_measure_sees_a_page_too_wide(tmp_path) -> None:
    page = tmp_path / "wide.html"
    page.write_text('<!DOCTYPE html><meta name="viewport" content="width=device-width">'
                    '<body><figure><svg data-chart="x" width="900" height="100">'
                    '<rect width="900" height="100"/></svg></figure></body>')
    found = probe(page, tmp_path, "wide")
    assert found["scrollWidth"] > found["innerWidth"] and found["drawn"] == 0, found


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_screenshot_is_a_real_page_and_nothing_is_fetched(reports, tmp_path, lang) -> None:
    shot, net_log = tmp_path / "shot.png", tmp_path / "net.json"
    proc = chromium(tmp_path, "shot", f"--screenshot={shot}", f"--log-net-log={net_log}",
                    f"--window-size={PHONE[0]},2000", reports[lang].as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (PHONE[0], 2000)
    assert len(data) > 20_000  # a blank or unstyled page compresses far below this
    assert page_requests(net_log) == []
