"""The French HTML catalog in a real headless Chromium: it renders, shows every KPI, loads nothing.

Chromium's own background requests (component updates, time sync) carry no initiator in its
network log; anything the page asks for carries the page's origin. So the log of the page load
must hold no request with an initiator, and a control page with one external image proves the
check can see such a request.
"""

import json
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kpiforge import Engine

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # nothing may reach the network even if something tried: every host name fails to resolve
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
NO_INITIATOR = "not an origin"  # how Chromium's net log marks browser-internal requests


def chromium_path() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.skip("chromium not installed: make test installs the Debian package chromium")
    return path


def chromium(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{name}"
    profile.mkdir()
    return subprocess.run([chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180)


def page_requests(net_log: Path) -> list[str]:
    """URLs of the requests a page started, read from a Chromium ``--log-net-log`` file."""
    text = net_log.read_text(encoding="utf-8", errors="replace")
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log cut short at exit lacks its closing brackets
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"]
            if e["type"] == start_job and "url" in e.get("params", {})
            and e["params"].get("initiator", NO_INITIATOR) != NO_INITIATOR]


class Dom(HTMLParser):
    """Headings by level, and every attribute that could make a browser fetch something."""

    URL_ATTRIBUTES = {"src", "href", "srcset", "poster", "data", "action", "xlink:href", "background"}

    def __init__(self):
        super().__init__()
        self.headings: dict[str, list[str]] = {}
        self.urls: list[str] = []
        self.tags: list[str] = []
        self._open: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls.extend(v or "" for k, v in attrs if k in self.URL_ATTRIBUTES)
        if tag in ("h1", "h2", "h3", "h4"):
            self._open.append((tag, []))

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            level, parts = self._open.pop()
            self.headings.setdefault(level, []).append(" ".join("".join(parts).split()))

    def handle_data(self, data):
        if self._open:
            self._open[-1][1].append(data)


@pytest.fixture(scope="module")
def catalog_html(tmp_path_factory):
    chromium_path()
    out = tmp_path_factory.mktemp("catalog")
    proc = subprocess.run([sys.executable, "-m", "kpiforge", "catalog", "--lang", "fr", "--format", "html",
                           "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out / "catalog.html"


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


def test_the_dom_has_the_french_headings_and_every_kpi(catalog_html, engine, tmp_path):
    net_log = tmp_path / "net.json"
    proc = chromium(tmp_path, "dom", f"--log-net-log={net_log}", "--dump-dom", catalog_html.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Dom()
    dom.feed(proc.stdout)
    assert dom.headings["h1"] == ["Catalogue des KPI"]
    assert {"Sommaire", "KPI par catégorie", "KPI par objectif", "Graphe des dépendances"} <= set(dom.headings["h2"])
    assert {"Notoriété", "Acquisition", "Conversion", "Fidélisation", "Génération de leads",
            "Dépendances sous forme de liste"} <= set(dom.headings["h3"])
    labels = sorted(d.labels["fr"] for d in engine.definitions.values())
    assert sorted(dom.headings["h4"]) == labels
    # the graph was parsed as SVG, with the three edges that feed ltv_cac_ratio
    assert "svg" in dom.tags and 'data-from="churn_rate" data-to="ltv"' in proc.stdout
    assert 'data-from="ltv" data-to="ltv_cac_ratio"' in proc.stdout
    assert 'data-from="cpa" data-to="ltv_cac_ratio"' in proc.stdout
    # nothing to fetch: every link stays inside the page
    assert dom.urls and all(url.startswith("#") for url in dom.urls), [u for u in dom.urls if not u.startswith("#")]
    assert "http://" not in proc.stdout and "https://" not in proc.stdout
    assert page_requests(net_log) == []


def test_the_network_check_sees_a_page_request(tmp_path):
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><title>control</title><img src="http://kpiforge.invalid/x.png">')
    net_log = tmp_path / "net.json"
    proc = chromium(tmp_path, "control", f"--log-net-log={net_log}", "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert page_requests(net_log) == ["http://kpiforge.invalid/x.png"]


def test_a_screenshot_is_a_real_page(catalog_html, tmp_path):
    shot = tmp_path / "shot.png"
    proc = chromium(tmp_path, "shot", f"--screenshot={shot}", "--window-size=1280,2000", catalog_html.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    assert len(data) > 10_000  # a blank or unstyled page compresses far below this
