"""Message templates: sandboxed, bounded, and never able to stop an alert."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from kpiforge.alerts._templates import MAX_OUTPUT, MAX_VALUE, render, render_message

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


def test_output_is_text_never_markup():
    # HTML and mrkdwn escaping is each sink's job: the message is the same text everywhere
    context = {**CONTEXT, "name": "<script>alert(1)</script> & co"}
    assert render_message("<b>{{ name }}</b>", context) == "<b><script>alert(1)</script> & co</b>"


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


BIG = "{% set s = 'x' * 20000 %}"
NS = "{% set ns = namespace(s='xxxxxxxx', n=2 ** 200, l=[]) %}"
# Each used to take seconds to minutes or gigabytes (issue 8, item 18); each construct named.
RESOURCE_HOSTILE = {
    "concat doubling in a namespace":
        NS + "{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "concat of a growing list": NS + BIG
        + "{% for i in range(1000) %}{% set ns.l = ns.l + [s ~ i] %}{% endfor %}{{ ns.l|length }}",
    "join over a large string": BIG + "{{ s|join(s) }}",
    "join over a list of large strings": BIG + "{{ ([s] * 20000)|join }}",
    "join of a mapped generator": BIG + "{{ ([s, s, s]|map('upper'))|join(s ~ s ~ s) }}",
    "big-integer multiplication in a loop":
        NS + "{% for i in range(30) %}{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n % 7 }}",
    "big-integer power": "{{ (2 ** 2000) ** 4000 }}",
    "round with a huge precision": "{{ 1.5|round(10 ** 9) }}",
    "repetition of a list of large strings": BIG + "{{ ([s] * 20000)|length }}",
    "printing a large list": BIG + "{% set l = [s, s, s, s] %}{{ [l, l, l, l, l] }}",
    "format of a large list": BIG + "{{ '%s'|format([s, s, s, s]) }}",
    "printf operator": BIG + "{{ '%s%s%s%s' % (s, s, s, s) }}",
    "replace growing a string": BIG + "{{ s|replace('x', s) }}",
    "replace of the empty string": BIG + "{{ s|replace('', 'abcd') }}",
    "upper of a large list": BIG + "{{ [s, s, s, s]|upper }}",
    "tojson of a large list": BIG + "{{ [s, s, s, s]|tojson }}",
    "sum of lists": BIG + "{{ ([[s]] * 1000)|sum(start=[]) }}",
    "indent of many lines": "{{ ('\n' * 20000)|indent(400, true, true) }}",
    "wordwrap with a large wrapstring":
        BIG + "{{ ('a ' * 10000)|wordwrap(1, wrapstring=s) }}",
    "set block buffer": BIG
        + "{% set big %}{% for i in range(1000) %}{{ s }}{% endfor %}{% endset %}{{ big|length }}",
    "macro output": BIG + "{% macro m() %}{% for i in range(1000) %}{{ s }}{% endfor %}"
        "{% endmacro %}{{ m()|length }}",
    "exponential macro recursion": "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}"
        "{% else %}x{% endif %}{% endmacro %}{{ m(40)|length }}",
    "nested literals sharing references":
        "{% set ns = namespace(a=[1], b=[1]) %}{% for i in range(60) %}"
        "{% set ns.a = [ns.a, ns.a] %}{% set ns.b = [ns.b, ns.b] %}{% endfor %}{{ ns.a == ns.b }}",
    "namespaces nested in namespaces": "{% set ns = namespace(cur=namespace(v='x' * 1000)) %}"
        "{% for i in range(60) %}{% set n = namespace() %}{% set n.a = ns.cur %}"
        "{% set n.b = ns.cur %}{% set ns.cur = n %}{% endfor %}{{ ns.cur|string|length }}",
    "dict() nesting": "{% set ns = namespace(d={'k': 'v'}) %}{% for i in range(60) %}"
        "{% set ns.d = dict(a=ns.d, b=ns.d) %}{% endfor %}{{ ns.d == ns.d }}",
    "filter block over a large buffer": "{% set s = 'x' * 20000 %}{% filter upper %}"
        "{% for i in range(100) %}{{ s }}{% endfor %}{% endfilter %}",
    "macro varargs nesting": "{% macro m(n) %}{{ varargs }}{% endmacro %}{{ m(1, 2) }}",
    "split of a large string": BIG + "{{ (s ~ s ~ s)|list|length }}",
    "nested loops printing nothing":
        "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
}


@pytest.mark.parametrize("source", list(RESOURCE_HOSTILE.values()), ids=list(RESOURCE_HOSTILE))
def test_hostile_templates_stay_within_time_and_memory(source):
    tracemalloc.start()
    started = time.monotonic()
    try:
        text = render_message(source, CONTEXT)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 3, f"took {elapsed:.1f}s"
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert len(text) <= MAX_OUTPUT
    # the alert still goes out: a note, then the default text
    assert text.startswith("[template error: ") and text.endswith(DEFAULT_TEXT), text[:300]


@pytest.mark.parametrize("source, expected", [
    ("{% set ns = namespace(s='ab') %}{% for i in range(3) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}{{ ns.s }}", "abababababababab"),
    ("{{ [name, kpi]|join(', ') }} {{ (2 ** 64) * 3 }}", "Coût par clic, cpc 55340232221128654848"),
    ("{{ '%-8s|'|format(kpi) }}{{ 'a-b'|replace('-', ' to ') }}", "cpc     |a to b"),
    ("{% set l = [1, 2, 3] %}{{ l|sum }} {{ (l + [4])|length }} {{ {'a': l}.a|last }}", "6 4 3"),
    ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(kpi) }}{% set b %}{{ name|upper }}{% endset %}"
     " {{ b }}", "<cpc> COÛT PAR CLIC"),
    ("{{ value|round(1) }} {{ 4.56|round(1, 'floor') }} {{ slice.items()|list|length }}",
     "4.5 4.5 1"),
])
def test_bounded_constructs_still_work(source, expected):
    assert render(source, CONTEXT) == expected


def test_a_value_just_under_the_limit_is_fine():
    text = render("{{ ('x' * (%d - 10))|length }}" % MAX_VALUE, CONTEXT)
    assert text == str(MAX_VALUE - 10)


def test_templates_render_before_the_write_transaction(tmp_path, monkeypatch):
    """While a message renders, another process can still write the state database."""
    import sqlite3

    from kpiforge import Engine
    from kpiforge.alerts import _templates, dispatch
    from tests.alert_servers import record, recording_plugins, write_kpis

    plugins, recorder = recording_plugins()
    engine = Engine.load(write_kpis(tmp_path), plugins=plugins)
    db = tmp_path / ".kpiforge" / "state.db"
    original = _templates.render
    seen: list[str] = []

    def render_and_try_to_write(*args, **kwargs):
        if db.exists():
            other = sqlite3.connect(db, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                seen.append("could write")
            except sqlite3.OperationalError as exc:
                seen.append(str(exc))
            finally:
                other.close()
        return original(*args, **kwargs)

    monkeypatch.setattr(_templates, "render", render_and_try_to_write)
    options = dict(project_dir=tmp_path, alerting={}, sinks={"ops": {"type": "recorder"}},
                   routes=None, state_path=None, plugins=plugins)
    report = dispatch(engine, [record("revenue", "2026-10", 50.0, "good", previous=100.0,
                                      change_pct=-50.0)], **options)
    assert report.created == 1 and seen and set(seen) == {"could write"}, seen
    [alert] = recorder.of("ops")
    assert alert.message.startswith("Revenue fell") and alert.message_html == alert.message


def test_messages_missing_under_the_lock_are_rendered_after_it():
    from kpiforge.alerts._messages import Messages

    messages = Messages()
    assert messages.render("{{ name }}!", CONTEXT, resolved=False) == "Coût par clic!"
    messages.strict = True
    assert messages.render("{{ name }}!", CONTEXT, resolved=False) == "Coût par clic!"
    assert messages.render("{{ kpi }}?", CONTEXT, resolved=False) == ""
    assert len(messages.missing) == 1
    messages.render_missing()
    assert not messages.missing and messages.render("{{ kpi }}?", CONTEXT, resolved=False) == "cpc?"
