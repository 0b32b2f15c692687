"""Built-in sinks without a server: console, file, and the optional apprise sink."""

from __future__ import annotations

import json
import os
import sys

import pytest

from kpiforge import SinkError
from kpiforge._plugins import load_plugins
from kpiforge.alerts import Alert
from kpiforge.plugins.sinks.apprise import AppriseSink
from kpiforge.plugins.sinks.basic import ConsoleSink, FileSink


def make_alert(**changes):
    values = dict(fingerprint="0123456789abcdef", kpi="cpc", name="Cost per click", state="firing",
                  severity="critical", status="critical", value=6.5, unit="currency",
                  period="2026-10", slice={}, thresholds={"critical": 5.0},
                  message="CPC [bold]too high[/bold]", id="msg_1")
    values.update(changes)
    return Alert(**values)


def test_builtin_sink_types_are_plugins():
    plugins = load_plugins()
    assert {"console", "file", "webhook", "slack", "email", "apprise"} <= set(plugins.sink_types)
    owners = {name: reg.plugin for name, reg in plugins.sink_types.items()}
    assert owners["webhook"] == owners["slack"] == "kpiforge.plugins.sinks.http"
    assert owners["email"] == "kpiforge.plugins.sinks.email"
    assert not plugins.failures


def test_console_prints_without_interpreting_markup(capsys):
    ConsoleSink("console", {}).send(make_alert())  # stderr by default: stdout stays data
    ConsoleSink("console", {"stream": "stdout"}).send(make_alert(state="resolved", message="back"))
    out, err = capsys.readouterr()
    assert "CRITICAL cpc: CPC [bold]too high[/bold]" in err
    assert "RESOLVED cpc: back" in out
    with pytest.raises(SinkError):
        ConsoleSink("console", {"stream": "printer"})


def test_file_sink_appends_one_fsynced_json_line_per_alert(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    sink = FileSink("log", {"path": "logs/alerts.jsonl"}, project_dir=tmp_path)
    sink.send(make_alert(message="line\nbreak"))
    sink.send(make_alert(id="msg_2", state="resolved"))
    lines = (tmp_path / "logs" / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and len(synced) == 2
    first = json.loads(lines[0])
    assert first["id"] == "msg_1" and first["type"] == "kpi.alert"
    assert first["data"]["message"] == "line\nbreak"
    assert json.loads(lines[1])["data"]["state"] == "resolved"


def test_file_sink_errors(tmp_path):
    with pytest.raises(SinkError):
        FileSink("log", {})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    sink = FileSink("log", {"path": str(blocker / "sub" / "alerts.jsonl")})
    with pytest.raises(SinkError) as caught:
        sink.send(make_alert())
    assert caught.value.retryable and "cannot write" in str(caught.value)


def test_apprise_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "apprise", None)
    with pytest.raises(SinkError) as caught:
        AppriseSink("notify", {"urls": ["json://127.0.0.1/"]})
    assert "pip install 'kpiforge[apprise]'" in str(caught.value)


def test_apprise_sink_is_listed_even_without_apprise():
    plugins = load_plugins()
    assert "apprise" in plugins.sink_types
    assert "kpiforge[apprise]" not in json.dumps(plugins.failures)


def test_apprise_sink_with_a_stand_in_module(monkeypatch):
    import types

    calls = []

    class FakeApprise:
        def __init__(self):
            self.urls = []

        def add(self, url):
            self.urls.append(url)
            return url.startswith("json://")

        def notify(self, **kwargs):
            calls.append(kwargs)
            return len(calls) == 1

    module = types.ModuleType("apprise")
    module.Apprise = FakeApprise
    module.NotifyType = types.SimpleNamespace(FAILURE="failure", WARNING="warning", INFO="info",
                                              SUCCESS="success")
    monkeypatch.setitem(sys.modules, "apprise", module)
    sink = AppriseSink("notify", {"urls": "json://127.0.0.1/"})
    sink.send(make_alert())
    assert calls[0]["title"] == "Critical: Cost per click" and calls[0]["notify_type"] == "failure"
    with pytest.raises(SinkError) as caught:
        sink.send(make_alert(state="resolved"))
    assert caught.value.retryable and calls[1]["notify_type"] == "success"
    with pytest.raises(SinkError) as caught:
        AppriseSink("notify", {"urls": ["bogus://x"]})
    assert "'bogus'" in str(caught.value)
    with pytest.raises(SinkError):
        AppriseSink("notify", {})


class ThirdPartySinks:
    """A third-party plugin: adds a sink type through the same hook the built-ins use."""

    received: list = []

    @staticmethod
    def factory(name, settings, context):
        class Pager:
            def send(self, alert):
                ThirdPartySinks.received.append((name, settings["team"], alert.kpi, alert.state))
        return Pager()

    from kpiforge.hookspecs import hookimpl as _hookimpl

    @_hookimpl
    def kpiforge_register_sink_types(self, register):
        register("pager", self.factory, doc="Page a team.")


def test_a_plugin_sink_type_is_used_by_dispatch(tmp_path):
    from kpiforge import Engine
    from kpiforge.alerts import dispatch
    from tests.alert_servers import record, write_kpis

    ThirdPartySinks.received = []
    plugins = load_plugins(extra=(ThirdPartySinks(),))
    assert plugins.sink_types["pager"].doc == "Page a team."
    engine = Engine.load(write_kpis(tmp_path), plugins=plugins)
    report = dispatch(engine, [record("ctr", "2026-10", 1.0, "warning")], project_dir=tmp_path,
                      sinks={"oncall": {"type": "pager", "team": "growth"}}, plugins=plugins)
    assert report.sent == {"oncall": 1}
    assert ThirdPartySinks.received == [("oncall", "growth", "ctr", "firing")]


def test_a_duplicate_sink_type_is_reported_naming_both_plugins():
    class Hijack:
        from kpiforge.hookspecs import hookimpl as _hookimpl

        @_hookimpl
        def kpiforge_register_sink_types(self, register):
            register("webhook", lambda name, settings, context: None)

    from kpiforge.errors import PluginWarning

    with pytest.warns(PluginWarning, match="both"):
        plugins = load_plugins(extra=(Hijack(),))
    problems = [p for p in plugins.failures.values() if "'webhook'" in p and "both" in p]
    assert len(problems) == 1 and "kpiforge.plugins.sinks.http" in problems[0]
    assert "Hijack" in problems[0]
