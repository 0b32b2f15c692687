"""The public alerting API: ``kpiforge.alerts`` is a facade over private modules."""

from __future__ import annotations

import inspect
from pathlib import Path

import kpiforge.alerts as alerts

ALERTS_DIR = Path(alerts.__file__).parent


def test_all_is_sorted_and_every_name_is_there():
    assert alerts.__all__ == sorted(alerts.__all__)
    for name in alerts.__all__:
        assert hasattr(alerts, name), name


def test_the_facade_names_what_plugins_use():
    # Plugins may import only names in __all__: these are what the built-in sinks and the
    # alerting CLI need.
    assert {"Alert", "AlertState", "DispatchReport", "Notification", "Store", "attributes_of_row", "dispatch",
            "parse_duration", "render_template", "resolve_state_path", "retry_pending",
            "send_test", "silence_matches", "simulate"} <= set(alerts.__all__)


def test_public_callables_have_docstrings():
    for name in alerts.__all__:
        value = getattr(alerts, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert inspect.getdoc(value), f"kpiforge.alerts.{name} has no docstring"


def test_the_facade_defines_nothing_itself():
    for name in alerts.__all__:
        value = getattr(alerts, name)
        if value is alerts.AlertState:
            continue  # lives beside Status, so that ``import kpiforge`` can export it
        if value is alerts.resolve_state_path:
            continue  # the history shares it: storing a run must not import alerting
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__module__.startswith("kpiforge.alerts._"), name


def test_no_module_in_the_package_is_over_400_lines():
    for path in ALERTS_DIR.glob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, f"{path.name}: {lines} lines"
