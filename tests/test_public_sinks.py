"""The public plugin API for sinks, commands and periods: every name resolves and is documented,
and a sink written only against ``kpiforge.sinks`` works end to end through ``Project.dispatch``
and the real delivery code (retryable failures retried, the others not)."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

import kpiforge
from kpiforge._plugins import load_plugins
from kpiforge.alerts import Store
from kpiforge.hookspecs import hookimpl
from kpiforge.sinks import Alert, SinkError

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
PUBLIC = ("kpiforge.sinks", "kpiforge.commands", "kpiforge.periods")
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)

KPIS = """\
kpis:
  - id: signup_rate
    name: Sign-up rate
    status: certified  # drafts do not alert
    formula: signups / visits * 100
    inputs: {signups: {unit: count}, visits: {unit: count}}
    unit: percent
    direction: higher_is_better
    thresholds: {good: 8, warning: 5, critical: 2}
"""
# 1 sign-up in 100 visits: 1 %, critical, so one alert fires
EVENTS = [{"day": "2026-10-01", "visits": 100, "signups": 1}]


def _guide_section(title: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/plugins.md has no '## {title}' section"
    return match.group(1)


def _public_names() -> list[tuple[str, str]]:
    return [(module, name) for module in PUBLIC for name in importlib.import_module(module).__all__]


@pytest.mark.parametrize("module", PUBLIC)
def test_a_public_module_has_a_docstring_and_a_sorted_all(module):
    mod = importlib.import_module(module)
    assert (mod.__doc__ or "").strip()
    assert mod.__all__ == sorted(mod.__all__) and len(set(mod.__all__)) == len(mod.__all__)


@pytest.mark.parametrize(("module", "name"), _public_names())
def test_a_public_name_resolves_and_is_documented(module, name):
    value = getattr(importlib.import_module(module), name)
    assert value is not None
    guide = GUIDE.read_text(encoding="utf-8")
    assert re.search(rf"`{re.escape(name)}[`(]", guide), f"{module}.{name} is not in docs/plugins.md"
    if inspect.isfunction(value) or inspect.isclass(value):
        doc = value.__dict__.get("__doc__") if inspect.isclass(value) else value.__doc__
        # SinkFactory is a hookspecs protocol whose meaning is its signature, documented above
        assert (doc or "").strip() or name == "SinkFactory", f"{module}.{name} has no docstring"


def test_the_public_modules_reexport_the_objects_the_core_uses():
    from kpiforge import alerts, errors, hookspecs, periods, sinks

    assert sinks.Alert is alerts.Alert
    assert sinks.SinkError is errors.SinkError is kpiforge.SinkError
    assert sinks.SinkContext is hookspecs.SinkContext
    assert periods.PeriodError is kpiforge.PeriodError


@pytest.mark.parametrize("field", sorted(Alert.__dataclass_fields__))
def test_the_guide_lists_every_alert_field(field):
    assert f"`{field}`" in _guide_section("Writing a sink")


def test_importing_the_sink_api_does_not_load_the_alert_model():
    code = ("import sys, kpiforge.sinks; assert 'kpiforge.alerts' not in sys.modules; "
            "from kpiforge.sinks import Alert; assert 'kpiforge.alerts' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_render_template_is_the_bounded_sandbox():
    from kpiforge.sinks import TemplateLimitError, render_template

    assert render_template("{{ kpi }} is {{ status }}", {"kpi": "ctr", "status": "bad"}) == "ctr is bad"
    assert render_template("{{ 'x' * 20 }}", {}, max_chars=5) == "xxxx…"
    with pytest.raises(TemplateLimitError):
        render_template("{{ 'x' * 10000000 }}", {})
    with pytest.raises(Exception):  # a live object never reaches the template
        render_template("{{ obj.__class__.__mro__ }}", {"obj": object()}) and None
        raise AssertionError("no error")


def test_clean_text_and_redact_url():
    from kpiforge.sinks import clean_text, redact_url

    assert clean_text("a\x1b[2Jb\tc\n") == "a\\x1b[2Jb\tc\n"
    assert redact_url("https://user:pw@hooks.example.com/T0/B1?token=abc") == \
        "https://user:***@hooks.example.com/T0/B1?token=***"
    assert redact_url("https://hooks.example.com/T0/B1", mask_path=True) == "https://hooks.example.com/***"


class Pager:
    """A third-party sink type written only against kpiforge.sinks; ``fail`` picks its error."""

    def __init__(self) -> None:
        self.calls: list[Alert] = []

    @hookimpl
    def kpiforge_register_sink_types(self, register):
        register("pager", self.factory, secrets=(), doc="Page someone.",
                 settings_schema={"type": "object", "properties": {"fail": {"enum": [
                     "never", "retryable", "permanent", "crash"]}}})

    def factory(self, name, settings, context):
        from kpiforge.sinks import SinkContext

        assert isinstance(context, SinkContext) and context.project_dir.is_dir()
        fail = settings.get("fail", "never")
        pager = self

        class Sink:
            def send(self, alert: Alert) -> None:
                pager.calls.append(alert)
                if fail == "retryable":
                    raise SinkError("503 from the pager", retryable=True)
                if fail == "permanent":
                    raise SinkError("400 from the pager: bad request")
                if fail == "crash":
                    raise RuntimeError("the pager library broke")

        return Sink()


def _project(tmp_path: Path, sink: dict, plugin: object) -> kpiforge.Project:
    (tmp_path / "kpis.yaml").write_text(KPIS, encoding="utf-8")
    return kpiforge.Project.from_dict({
        "definitions": ["kpis.yaml"],
        "state": "state.db",
        "sources": {"web": {"type": "records", "time": "day",
                            "inputs": {"visits": {"agg": "sum"}, "signups": {"agg": "sum"}}}},
        "sinks": {"oncall": sink},
    }, root=tmp_path, plugins=load_plugins(extra=(plugin,)))


def _dispatch(project: kpiforge.Project) -> kpiforge.DispatchSummary:
    result = project.run(period="2026-10", kpis=["signup_rate"], data={"web": EVENTS})
    return project.dispatch(result)


def _outbox(tmp_path: Path) -> list[tuple[str, int]]:
    store = Store(str(tmp_path / "state.db"))
    try:
        return [(row["status"], row["attempts"]) for row in store.undelivered(include_failed=True)]
    finally:
        store.close()


RETRY = {"max_attempts": 3, "initial_delay": 0, "max_delay": 0, "jitter": False}


def test_a_sink_receives_the_alert_from_project_dispatch(tmp_path):
    pager = Pager()
    project = _project(tmp_path, {"type": "pager"}, pager)
    summary = _dispatch(project)
    assert (summary.created, summary.sent, summary.failed, summary.pending) == (1, 1, 0, 0)
    [alert] = pager.calls
    assert isinstance(alert, Alert)
    assert (alert.kpi, alert.state, alert.status, alert.severity, alert.period) == \
        ("signup_rate", "firing", "critical", "critical", "2026-10")
    assert alert.value == 1.0 and alert.value_text == "1.00 %" and alert.id
    assert _outbox(tmp_path) == []


@pytest.mark.parametrize(("fail", "calls", "outbox", "later"), [
    ("retryable", 3, [("pending", 3)], 6),   # retried up to max_attempts, again next dispatch
    ("crash", 3, [("pending", 3)], 6),       # an unexpected exception counts as retryable
    ("permanent", 1, [("failed", 1)], 1),    # not retried, and left alone by later dispatches
])
def test_a_retryable_sink_error_is_retried_and_another_is_not(tmp_path, fail, calls, outbox, later):
    pager = Pager()
    project = _project(tmp_path, {"type": "pager", "fail": fail, "retry": RETRY}, pager)
    summary = _dispatch(project)
    assert (summary.created, summary.sent, summary.failed, summary.pending) == (1, 0, 1, 1)
    assert len(pager.calls) == calls
    assert len({a.id for a in pager.calls}) == 1  # every attempt carries the same message id
    assert _outbox(tmp_path) == outbox
    assert any("pager" in e for e in summary.errors["oncall"])

    time.sleep(0.05)  # the retryable message's next attempt is due after a few ms
    again = _dispatch(project)
    assert again.created == 0 and len(pager.calls) == later


def _guide_blocks(title: str) -> list[str]:
    return BLOCK.findall(_guide_section(title))


def test_the_guide_sink_example_runs(tmp_path):
    [code] = _guide_blocks("Writing a sink")
    module = types.ModuleType("guide_sink")
    exec(compile(code, "docs/plugins.md: Writing a sink", "exec"), module.__dict__)
    project = _project(tmp_path, {"type": "lines", "path": "alerts.txt",
                                  "line": "{{ kpi }} {{ status }} {{ value_text }}"}, module)
    assert _dispatch(project).sent == 1
    [line] = (tmp_path / "alerts.txt").read_text(encoding="utf-8").splitlines()
    assert line.endswith(" signup_rate critical 1.00 %")

    # a missing folder is not retryable: one attempt, failed for good
    gone = tmp_path / "gone"
    gone.mkdir()
    project = _project(gone, {"type": "lines", "path": "no/such/alerts.txt", "retry": RETRY}, module)
    summary = _dispatch(project)
    assert summary.failed == 1 and _outbox(gone) == [("failed", 1)]


def test_the_guide_command_example_runs(tmp_path):
    [code] = _guide_blocks("A command plugin")
    plugins_dir = tmp_path / "plugins"
    plugins_dir.mkdir()
    (plugins_dir / "kpi_count.py").write_text(code, encoding="utf-8")
    (tmp_path / "kpis.yaml").write_text(KPIS, encoding="utf-8")
    # a source with an unset ${VAR}: the definitions still load
    (tmp_path / "kpiforge.yaml").write_text(
        "definitions: [kpis.yaml]\nsources:\n  pg: {type: postgres, dsn: '${NO_SUCH_DSN}', "
        "time: day, inputs: {visits: {agg: sum}}}\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "kpiforge", "--plugins-dir", str(plugins_dir),
                           "kpi-count", "--project", "kpiforge.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "1 KPI\n"
    proc = subprocess.run([sys.executable, "-m", "kpiforge", "--plugins-dir", str(plugins_dir),
                           "kpi-count", "--project", "missing.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.startswith("error: missing.yaml: ")


def test_the_guide_periods_example_runs():
    [code] = _guide_blocks("Periods")
    exec(compile(code, "docs/plugins.md: Periods", "exec"), {})


def test_plugins_import_no_private_kpiforge_module():
    """The built-in sinks and commands use only the public API (the acceptance of issue 14)."""
    private = re.compile(r"^\s*(from|import)\s+kpiforge\.(\w+\.)*_\w+", re.M)
    files = sorted((ROOT / "plugins" / "sinks").glob("*.py")) + [ROOT / "plugins" / "alerting_cli.py"]
    files += sorted((ROOT / "plugins").glob("_alerting_*.py"))
    offenders = {f.name: private.findall(f.read_text(encoding="utf-8")) for f in files}
    assert {name: found for name, found in offenders.items() if found} == {}
