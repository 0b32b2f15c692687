"""``kpiforge serve`` against a real uvicorn server: the API's numbers are ``Project.run``'s and
``Project.history``'s, errors are JSON 4xx with a message, nothing can be written, and the
OpenAPI document describes the routes (checked by schemathesis when installed)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kpiforge import Project
from tests.report_project import write_report_project
from tests.serve_server import get, running

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    project = Project.load(write_report_project(tmp_path_factory.mktemp("serve")))
    project.record_history(project.run(grain="month", last=3))
    return project


@pytest.fixture(scope="module")
def server(project):
    with running(project) as base:
        yield base


@pytest.mark.parametrize("query", [
    {"grain": "month"},
    {"grain": "month", "period": "2026-09", "by": "channel"},
    {"grain": "quarter", "last": "3"},
    {"grain": "week", "kpis": "ctr,cpc"},
])
def test_run_values_are_project_runs(server, project, query):
    response = get(server, "/api/run", **query)
    assert response.status_code == 200, response.text
    expected = project.run(grain=query["grain"], period=query.get("period"),
                           by=[query["by"]] if "by" in query else (),
                           last=int(query["last"]) if "last" in query else None,
                           kpis=query["kpis"].split(",") if "kpis" in query else None)
    got = response.json()
    assert got["results"] == expected.to_records()
    assert got["periods"] == list(expected.periods) and got["grain"] == expected.grain
    assert got["results"], "a run with no value would prove nothing"


def test_history_is_project_history(server, project):
    got = get(server, "/api/history/ctr", grain="month").json()
    assert got["records"] == project.history("ctr", grain="month").to_records()
    assert len(got["records"]) == 3


def test_kpis_and_definition(server):
    kpis = get(server, "/api/kpis", lang="fr").json()
    assert {k["id"] for k in kpis["kpis"]} == {"ctr", "cpc", "clicks", "cost_per_conversion"}
    assert [o["label"] for o in kpis["objectives"]] == ["Toucher plus de monde"]
    ctr = get(server, "/api/kpis/ctr").json()
    assert ctr["formula"] == "clicks / impressions * 100"
    assert ctr["thresholds"] == {"good": 3, "warning": 2, "critical": 1}


@pytest.mark.parametrize(("path", "params", "status", "words"), [
    ("/api/kpis/nope", {}, 404, "unknown KPI 'nope'"),
    ("/api/history/ctx", {}, 404, "did you mean 'ctr'"),
    ("/api/run", {"grain": "decade"}, 400, "grain: 'decade'"),
    ("/api/run", {"by": "country"}, 400, "dimension 'country'"),
    ("/api/run", {"period": "2026-13"}, 400, "2026-13"),
    ("/api/run", {"last": "x"}, 400, "last: 'x'"),
    ("/api/run", {"kpis": "nope"}, 404, "unknown KPI"),
    ("/api/nothing", {}, 404, "no page"),
])
def test_errors_are_json_messages(server, path, params, status, words):
    response = get(server, path, **params)
    assert response.status_code == status
    assert words in response.json()["error"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/", "/api/kpis", "/api/run", "/api/kpis/ctr", "/nowhere"])
def test_nothing_can_be_written(server, method, path):
    response = httpx.request(method, server + path, timeout=30)
    assert response.status_code == 405
    assert "read-only" in response.json()["error"]


def test_openapi_describes_the_api_routes(server):
    document = get(server, "/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/api/kpis", "/api/kpis/{kpi}", "/api/run",
                                      "/api/history/{kpi}", "/api/kpis/{kpi}/annotations"}
    for path in document["paths"]:
        assert get(server, path.replace("{kpi}", "ctr")).status_code == 200


@pytest.mark.parametrize(("lang", "words"), [("en", "Reach more people"),
                                              ("fr", "Toucher plus de monde")])
def test_pages_in_both_languages(server, lang, words):
    overview = get(server, "/", lang=lang, grain="month")
    assert overview.status_code == 200 and words in overview.text
    assert 'data-kpi="ctr"' in overview.text
    page = get(server, "/kpi/ctr", lang=lang, grain="month", by="channel")
    assert page.status_code == 200
    assert "clicks / impressions * 100" in page.text and "display" in page.text
    assert page.text.count('<tr class="stored">') == 3  # the history the fixture stored


def test_kpi_page_draws_the_report_charts(server):
    pytest.importorskip("altair")
    pytest.importorskip("vl_convert")
    page = get(server, "/kpi/ctr", grain="month", by="channel").text
    assert 'data-chart="trend"' in page and 'data-chart="breakdown"' in page
    assert 'data-chart="breakdown"' not in get(server, "/kpi/ctr", grain="month").text


def test_a_missing_serve_extra_names_the_install_line(monkeypatch, tmp_path):
    import sys

    from click.testing import CliRunner

    from kpiforge._plugins import load_plugins
    from kpiforge.cli import build_cli

    monkeypatch.setitem(sys.modules, "starlette", None)  # import starlette now fails
    plugins = load_plugins()
    result = CliRunner().invoke(build_cli(plugins), ["serve", "--project",
                                                     str(tmp_path / "none.yaml")], obj=plugins)
    assert result.exit_code == 1
    assert "pip install 'kpiforge[serve]'" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_kpi_page_is_a_message(server):
    page = get(server, "/kpi/nope")
    assert page.status_code == 404 and "unknown KPI" in page.text


def test_serve_binds_to_localhost_by_default():
    from kpiforge._cli_serve import serve_command

    defaults = {p.name: p.default for p in serve_command.params}
    assert defaults["host"] == "127.0.0.1" and defaults["port"] == 8000


def test_schemathesis_against_openapi(server):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    checked = 0
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=8, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def check(case):
            response = case.call(base_url=server, timeout=60)
            assert response.status_code < 500, response.text
            # a schema-valid query can still be refused (period and last together, a period
            # that is no period): documented 400s, so that check is left out
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        check()
        checked += 1
    assert checked == 5


def test_the_ui_strings_have_the_same_keys_in_both_languages():
    from kpiforge._serve import LANGS, _strings

    strings = _strings()
    assert set(strings) == set(LANGS)
    assert set(strings["en"]) == set(strings["fr"])
    assert all(strings["en"].values()) and all(strings["fr"].values())
    # every string the page uses is there (jinja would print nothing for a missing one)
    import re
    from importlib import resources

    page = resources.files("kpiforge.templates").joinpath("serve.html.j2").read_text("utf-8")
    used = set(re.findall(r"\bt\.(\w+)", page))
    assert used and used <= set(strings["en"])


def test_the_serve_command_serves_on_localhost(project, tmp_path):
    import subprocess
    import sys
    import time

    from tests.serve_server import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kpiforge", "serve", "--project",
                             str(Path(project.root) / "kpiforge.yaml"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60  # bounded: a command that never listens fails
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/kpis", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "kpiforge serve did not listen in 60 s"
                time.sleep(0.2)
        assert response.status_code == 200 and response.json()["kpis"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in err
