"""Message templates: sandboxed, bounded, and never able to stop an alert."""

from __future__ import annotations

import time

import pytest

from kpiforge.alerts._templates import MAX_OUTPUT, render, render_message

CONTEXT = {
    "name": "Coût par clic", "kpi": "cpc", "status": "warning", "severity": "warning",
    "state": "firing", "value": 4.5, "value_text": "4.50 EUR", "period": "2026-10",
    "slice": {"country": "FR"}, "slice_text": "country=FR", "change_text": "▲ +12.0 %",
    "thresholds": {"warning": 3.0, "critical": 5.0}, "labels": {"team": "growth"},
    "owner": "growth",
}
DEFAULT_TEXT = "Coût par clic is warning: 4.50 EUR for 2026-10 (country=FR), ▲ +12.0 %."

HOSTILE = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ name.__class__.__base__.__subclasses__() }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(999) %}{% for j in range(999) %}{% endfor %}{% endfor %}",
    "{% set l = range(100)|list %}{% for a in l %}{% for b in l %}{% for c in l %}"
    "{% for d in l %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}",
    "{{ 'x' * 10**9 }}",
    "{{ [1] * 10**9 }}",
    "{{ 10 ** 10 ** 10 ** 10 }}",
    "{{ 9 ** 999999 }}",
    "{{ 'x'|center(10**9) }}",
    "{{ 'x'|indent(10**9) }}",
    "{{ '%999999999s'|format(1) }}",
    "{{ '%*s' % (999999999, 1) }}",
    "{{ '{:999999999}'.format(1) }}",
    "{{ name.format_map({}) }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ (name ~ name)|replace('', name * 1000) }}",
    "{{ [1]|batch(10**9, 0)|list }}",
    "{{ lipsum(10**6) }}",
    "{% set d = {} %}{{ d.update({'a': 1}) }}",
    "{% set l = [1] %}{% for x in l %}{{ l.append(x) }}{% endfor %}",
    "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(1) }}",
    "{{ name",
    "{% if %}",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_templates_neither_escape_nor_hang(source):
    started = time.monotonic()
    text = render_message(source, CONTEXT)
    elapsed = time.monotonic() - started
    assert elapsed < 3, f"took {elapsed:.1f}s"
    assert len(text) <= MAX_OUTPUT + 400
    assert "<class" not in text and "__builtins__" not in text and "subprocess" not in text
    assert "function" not in text and "module" not in text.replace("template", "")
    if text.startswith("[template error:"):
        # the error is shown in place and the people still learn what happened
        assert text.endswith(DEFAULT_TEXT)


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}",
    "{% for i in range(10**9) %}{% endfor %}", "{{ 'x' * 10**9 }}", "{{ name",
])
def test_errors_are_reported_in_place(source):
    text = render_message(source, CONTEXT)
    assert text.startswith("[template error: ")
    assert text.endswith(DEFAULT_TEXT)


def test_long_output_is_cut():
    text = render_message("{% for i in range(1000) %}{{ name }} {{ value_text }} {% endfor %}", CONTEXT)
    assert len(text) == MAX_OUTPUT and text.endswith("…")


def test_user_text_is_never_str_format():
    # braces in values and in the template are literal: no str.format anywhere
    text = render_message("{{ name }} {0} {value}", {**CONTEXT, "name": "{__class__}"})
    assert text == "{__class__} {0} {value}"


@pytest.mark.parametrize("source, expected", [
    ("{{ name }}: {{ value_text }} ({{ status|upper }})", "Coût par clic: 4.50 EUR (WARNING)"),
    ("{{ thresholds.critical }} / {{ labels.team }} / {{ slice.country }}", "5.0 / growth / FR"),
    ("{% if state == 'firing' %}ALERT{% else %}ok{% endif %} {{ '%.1f'|format(value) }}", "ALERT 4.5"),
    ("{{ missing }}|{{ owner|default('nobody') }}", "|growth"),
    ("{% for k, v in thresholds|dictsort %}{{ k }}={{ v }} {% endfor %}", "critical=5.0 warning=3.0 "),
])
def test_templates_render_the_alert(source, expected):
    assert render_message(source, CONTEXT) == expected


def test_html_autoescapes_values_text_does_not():
    context = {**CONTEXT, "name": "<script>alert(1)</script> & co"}
    assert render_message("{{ name }}", context) == "<script>alert(1)</script> & co"
    html = render_message("<b>{{ name }}</b>", context, html=True)
    assert html == "<b>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</b>"
    # an error message is escaped in HTML too
    broken = render_message("{{ '<i>'.__class__ }}", context, html=True)
    assert "<i>" not in broken and "&lt;script&gt;" in broken


def test_default_messages():
    assert render_message(None, CONTEXT) == DEFAULT_TEXT
    resolved = render_message(None, {**CONTEXT, "status": "good"}, resolved=True)
    assert resolved == "Coût par clic recovered: 4.50 EUR (good) for 2026-10 (country=FR)."


def test_render_raises_for_callers_that_want_errors():
    with pytest.raises(Exception):
        render("{{ ''.__class__ }}", CONTEXT)


def test_context_objects_are_reduced_to_plain_data():
    class Secretive:
        password = "hunter2"

        def __str__(self):
            return "secretive"

    text = render_message("{{ obj }} {{ obj.password }}", {"obj": Secretive()})
    assert text == "secretive "
