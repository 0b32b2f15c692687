"""examples/plugin, a third-party plugin written only against the public API, end to end.

The package is built as a wheel and installed into a fresh virtual environment that sees this
checkout's kpiforge (and its dependencies) but not the example's source folder, so kpiforge can
only find the plugin the way users install it: through the ``kpiforge`` entry-point group.
A real HTTP server on 127.0.0.1 serves the JSON Lines export and checks the bearer token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import threading
import venv
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "plugin"
TOKEN = "s3cr3t-token-0123456789"

pytestmark = pytest.mark.slow

ROWS = [
    {"day": "2026-10-01", "channel": "email", "visits": 200, "orders": 5, "status": "paid"},
    {"day": "2026-10-02", "channel": "email", "visits": 100, "orders": 1, "status": "refunded"},
    {"day": "2026-10-15", "channel": "ads", "visits": 400, "orders": 2, "status": "paid"},
    {"day": "2026-09-30", "channel": "ads", "visits": 999, "orders": 99, "status": "paid"},
    {"day": "2026-08-10", "channel": "ads", "visits": 0, "orders": 0, "status": "paid"},
]


class _Export(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            self.end_headers()
            return
        body = "\n".join(json.dumps(r) for r in ROWS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def export_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Export)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/export.jsonl"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def python(tmp_path_factory) -> Path:
    """A venv with the example plugin installed from its wheel, and this kpiforge."""
    work = tmp_path_factory.mktemp("example-plugin")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(work / "dist"), str(EXAMPLE)], check=True, timeout=600)
    (wheel,) = (work / "dist").glob("kpiforge_example_plugin-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True)
    # the running environment as a site dir (processing its .pth files, so the editable
    # kpiforge of this checkout is what the venv imports); the plugin comes from the wheel only
    host = sysconfig.get_paths()["purelib"]
    (Path(site.strip()) / "host.pth").write_text(f"import site; site.addsitedir({host!r})\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--no-deps", "--no-index", "-q", str(wheel)], check=True, timeout=600)
    return python


def _project(folder: Path, url: str, *, extra: str = "") -> Path:
    (folder / "kpis").mkdir(parents=True, exist_ok=True)
    (folder / "kpis" / "paid_order_rate.yaml").write_text(
        "id: paid_order_rate\n"
        "name: Paid order rate\n"
        "description: Paid orders per hundred visits.\n"
        "category: conversion\n"
        "owner: web\n"
        "status: certified\n"  # drafts do not alert
        "formula: pct(orders, visits)\n"
        "inputs:\n"
        "  orders: {description: Paid orders., unit: count}\n"
        "  visits: {description: Visits., unit: count}\n"
        "unit: percent\n"
        "direction: higher_is_better\n"
        "thresholds: {good: 3, warning: 2, critical: 1}\n", encoding="utf-8")
    project = folder / "kpiforge.yaml"
    project.write_text(
        "definitions: [kpis]\n"
        "sources:\n"
        "  events:\n"
        "    type: jsonl_http\n"
        f"    url: {url}\n"
        "    token: ${EXAMPLE_TOKEN}\n"
        f"{extra}"
        "    time: day\n"
        "    dimensions: [channel]\n"
        "    inputs:\n"
        "      visits: {agg: sum}\n"
        "      orders: {agg: sum, filter: {status: paid}}\n"
        "state: .kpiforge/state.db\n"
        "sinks:\n"
        "  log: {type: textfile, path: alerts.log}\n"
        "routes:\n"
        "  - sinks: [log]\n", encoding="utf-8")
    return project


def _kpiforge(python: Path, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["EXAMPLE_TOKEN"] = token
    return subprocess.run([str(python), "-m", "kpiforge", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_the_plugin_source_function_and_sink_work_from_kpiforge_run(python, export_url, tmp_path):
    project = _project(tmp_path, export_url)
    proc = _kpiforge(python, "run", "--project", str(project), "--period", "2026-10",
                     "--by", "channel", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    records = {r["slice"]["channel"]: r for r in json.loads(proc.stdout)["results"]}
    # email: 5 paid orders / 300 visits; ads: 2 / 400 (September's row is outside the period)
    assert records["email"]["value"] == pytest.approx(5 / 300 * 100)
    assert records["ads"]["value"] == pytest.approx(2 / 400 * 100)
    assert (records["email"]["status"], records["ads"]["status"]) == ("warning", "critical")
    log = (tmp_path / "alerts.log").read_text(encoding="utf-8").splitlines()
    assert sorted(line.split(":")[0] for line in log) == [
        "firing paid_order_rate 2026-10 channel=ads 0.50 %",
        "firing paid_order_rate 2026-10 channel=email 1.67 %"]


def test_a_zero_whole_is_null_with_a_reason(python, export_url, tmp_path):
    project = _project(tmp_path, export_url)
    proc = _kpiforge(python, "run", "--project", str(project), "--period", "2026-08",
                     "--format", "json", "--no-alerts")
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(proc.stdout)["results"]
    assert (record["value"], record["reason"]) == (None, "division by zero")


def test_a_wrong_token_is_a_located_error_that_never_shows_the_token(python, export_url, tmp_path):
    project = _project(tmp_path, export_url)
    wrong = "wrong-token-9876543210"
    proc = _kpiforge(python, "run", "--project", str(project), "--period", "2026-10",
                     "--no-alerts", token=wrong)
    assert proc.returncode == 1
    assert "kpiforge.yaml:4: source 'events'" in proc.stderr and "HTTP 401" in proc.stderr
    assert wrong not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


def test_the_plugin_settings_are_validated_like_built_in_ones(python, export_url, tmp_path):
    project = _project(tmp_path, export_url, extra="    timeoutt: 5\n")
    proc = _kpiforge(python, "validate", "--project", str(project))
    assert proc.returncode == 1
    assert "kpiforge.yaml:7" in proc.stderr + proc.stdout, proc.stderr + proc.stdout
    assert "timeoutt" in proc.stderr + proc.stdout and "did you mean 'timeout'" in proc.stderr + proc.stdout


def test_kpiforge_lists_what_the_plugin_registered(python):
    proc = _kpiforge(python, "plugins", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    (example,) = [p for p in listing["plugins"] if p["name"] == "example"]
    assert sorted(example["registered"]) == ["function:pct", "sink:textfile", "source:jsonl_http"]
    assert example["origin"] != "builtin" and listing["failures"] == {}
