"""The registry: settings schemas, secrets and capabilities in register calls; order and clashes.

A third-party source type declares its own settings (``token``, secret) and is validated like a
built-in, at the line and column of ``kpiforge.yaml``; built-ins are registered first whatever
``tryfirst``/``trylast`` say; a clash refuses only the clashing name; failures are warnings.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from kpiforge import Engine, ProjectError, SourceError
from kpiforge._env import expand
from kpiforge._plugins import load_plugins
from kpiforge._project import load_project
from kpiforge._run import run as run_kpis
from kpiforge.alerts._routing import expand_env as expand_sink_env
from kpiforge.errors import KpiforgeError, PluginWarning

TOKEN = "tok-SECRET-8812"

API_PLUGIN = '''
import numpy as np

from kpiforge import SourceError, hookimpl
from kpiforge.sources import SourceFrame

SEEN = {}


class Api:
    def __init__(self, name, settings, context):
        SEEN["settings"] = dict(settings)
        SEEN["project_dir"] = context.project_dir
        self.settings = settings

    def fetch(self, request):
        mode = self.settings.get("fail")
        if mode == "source-error":
            raise SourceError(f"the API refused token {self.settings['token']}")
        if mode == "crash":
            raise RuntimeError(f"HTTP 401 for Authorization: {self.settings['token']}")
        starts = [start for start, _ in request.ranges]
        return SourceFrame.from_columns(
            starts, {}, {name: [float(self.settings["value"])] * len(starts) for name in request.inputs},
            grain=request.grain, week_start=request.week_start)


@hookimpl
def kpiforge_register_source_types(register):
    register("api", Api, doc="An HTTP API.", secrets=("token",), settings_schema={
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {"type": "string", "minLength": 1},
            "value": {"type": "number"},
            "fail": {"enum": ["source-error", "crash"]},
        },
    })
'''

DEFINITION = """\
id: visits_kpi
name: Visits
formula: visits
inputs: {visits: {unit: count}}
unit: count
direction: higher_is_better
"""


@pytest.fixture
def api(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "api_plugin.py").write_text(API_PLUGIN)
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "visits.yaml").write_text(DEFINITION)
    return load_plugins(folder)


def project_file(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "kpiforge.yaml"
    path.write_text("definitions: [defs/]\nsources:\n  web:\n" + textwrap.indent(textwrap.dedent(source), "    "))
    return path


def diagnostics(path: Path, plugins, environ) -> list[str]:
    with pytest.raises(ProjectError) as info:
        load_project(path, plugins=plugins, environ=environ)
    return [str(d) for d in info.value.diagnostics]


def test_a_plugin_source_with_its_own_secret_setting_runs_from_a_project_file(api, tmp_path, monkeypatch):
    path = project_file(tmp_path, """\
        type: api
        token: ${MY_TOKEN}
        value: 7
        time: t
        inputs: {visits: {agg: sum}}
        """)
    project = load_project(path, plugins=api, environ={"MY_TOKEN": TOKEN})
    assert project.sources["web"].settings["token"] == "${MY_TOKEN}"  # never the value
    module = sys.modules["kpiforge_plugins_dir.api_plugin"]
    engine = Engine.load(tmp_path / "defs", plugins=api)
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    result = run_kpis(engine, project, period="2026-10")
    assert [(r.kpi, r.value) for r in result] == [("visits_kpi", 7.0)]
    assert module.SEEN["settings"]["token"] == TOKEN
    assert module.SEEN["project_dir"] == tmp_path.resolve()


@pytest.mark.parametrize("source, environ, expected", [
    ("type: api\ntokn: x\nvalue: 1\ntime: t\ninputs: {visits: {agg: sum}}\n", {},
     ["kpiforge.yaml:4:5: error[schema]: sources.web: missing required field 'token'",
      "kpiforge.yaml:5:5: error[schema]: sources.web.tokn: unknown field 'tokn' (did you mean 'token'?)"]),
    ("type: api\ntoken: ${MY_TOKEN}\nvalue: many\ntime: t\ninputs: {visits: {agg: sum}}\n",
     {"MY_TOKEN": TOKEN},
     ["kpiforge.yaml:6:12: error[schema]: sources.web.value: expected a number, got a string ('many')"]),
    ("type: api\ntoken: ${MY_TOKEN}\ntime: t\ninputs: {visits: {agg: sum}}\n", {},
     ["kpiforge.yaml:5:12: error[env]: sources.web.token: environment variable MY_TOKEN is not set "
      "(referenced as ${MY_TOKEN})"]),
    # a built-in type's settings are checked the same way (csv has no 'url')
    ("type: csv\npath: a.csv\nurl: x\ntime: t\ninputs: {visits: {agg: sum}}\n", {},
     ["kpiforge.yaml:6:5: error[schema]: sources.web.url: unknown field 'url'"]),
    ("type: csv\npaht: a.csv\ntime: t\ninputs: {visits: {agg: sum}}\n", {},
     ["kpiforge.yaml:4:5: error[schema]: sources.web: missing required field 'path'",
      "kpiforge.yaml:5:5: error[schema]: sources.web.paht: unknown field 'paht' (did you mean 'path'?)"]),
    # an unknown type is reported once, its settings are not guessed at
    ("type: csvv\npath: a.csv\ntime: t\ninputs: {visits: {agg: sum}}\n", {},
     ["kpiforge.yaml:4:11: error[source-type]: sources.web.type: unknown source type 'csvv' "
      "(did you mean 'csv'?); registered types: api, csv, dataframe, duckdb, json, parquet, "
      "records, spark, sql, sqlite"]),
])
def test_plugin_and_builtin_settings_are_validated_at_their_line(api, tmp_path, source, environ, expected):
    path = project_file(tmp_path, source)
    found = diagnostics(path, api, environ)
    assert [re.sub(r"^.*kpiforge\.yaml", "kpiforge.yaml", d) for d in found] == expected


def test_a_builtin_sink_setting_typo_is_an_unknown_field_with_a_suggestion(tmp_path):
    (tmp_path / "data.csv").write_text("t,visits\n2026-10-01,1\n")
    path = tmp_path / "kpiforge.yaml"
    path.write_text("sources:\n  web: {type: csv, path: data.csv, time: t, inputs: {visits: {agg: sum}}}\n"
                    "sinks:\n  ops:\n    type: webhook\n    url: https://h.example/x\n    secrte: x\n")
    found = diagnostics(path, load_plugins(), {})
    assert [d.split(": ", 1)[1] for d in found] == [
        "error[schema]: sinks.ops.secrte: unknown field 'secrte' (did you mean 'secret'?)"]
    assert found[0].startswith(f"{path}:7:5")


@pytest.mark.parametrize("mode, shown", [
    ("source-error", "the API refused token ***"),
    ("crash", "fetch failed: RuntimeError: HTTP 401 for Authorization: ***"),
])
def test_a_plugin_source_secret_is_redacted_in_its_errors(api, tmp_path, monkeypatch, mode, shown):
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    path = project_file(tmp_path, f"""\
        type: api
        token: ${{MY_TOKEN}}
        value: 1
        fail: {mode}
        time: t
        inputs: {{visits: {{agg: sum}}}}
        """)
    engine = Engine.load(tmp_path / "defs", plugins=api)
    with pytest.raises(SourceError) as info:
        run_kpis(engine, load_project(path, plugins=api), period="2026-10")
    assert shown in str(info.value) and TOKEN not in str(info.value)


@pytest.mark.parametrize("kind, type_name, settings, secret", [
    ("source", "sql", {"url": "postgresql+psycopg://kpi:pg-Pass-0042@db/shop"}, "pg-Pass-0042"),
    ("source", "api", {"token": TOKEN}, TOKEN),
    ("sink", "email", {"host": "h", "password": "smtp-Pass-77"}, "smtp-Pass-77"),
    ("sink", "slack", {"url": "https://hooks.slack.com/services/T0/B0/xoxbTOKEN123"}, "xoxbTOKEN123"),
])
def test_secrets_come_from_the_register_call(api, kind, type_name, settings, secret):
    from kpiforge._redact import secret_values

    registration = (api.source_types if kind == "source" else api.sink_types)[type_name]
    assert secret in secret_values(registration.secrets, settings)
    assert secret in secret_values(registration.secrets, {}, expanded=[secret])  # ${VAR} values


def test_a_sql_url_password_is_redacted_in_a_source_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PG_PASS", "pg-Pass-0042")
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "visits.yaml").write_text(DEFINITION)
    path = project_file(tmp_path, """\
        type: sql
        url: "nosuchdialect://kpi:${PG_PASS}@db.invalid/shop"
        table: t
        time: t
        inputs: {visits: {agg: sum}}
        """)
    engine = Engine.load(tmp_path / "defs")
    with pytest.raises(SourceError) as info:
        run_kpis(engine, load_project(path), period="2026-10")
    assert "pg-Pass-0042" not in str(info.value) and "source 'web'" in str(info.value)


@pytest.mark.parametrize("text, expected", [
    ("plain", "plain"),
    ("a${X}b${Y}", "a1b2"),
    ("$X stays, $$ stays, $1 too", "$X stays, $$ stays, $1 too"),
    ("$${X} is written as is", "${X} is written as is"),
    ("pa$$word-${X}", "pa$$word-1"),
    ("${1X} is no reference", "${1X} is no reference"),
])
def test_one_expander_for_sources_and_sinks(text, expected):
    from kpiforge._project import expand_env as expand_source_env

    env = {"X": "1", "Y": "2"}
    assert expand(text, env) == expected
    assert expand_source_env(text, env) == expected
    assert expand_sink_env({"s": [text]}, "sinks.ops", env) == {"s": [expected]}


def test_an_unset_variable_names_the_setting_for_sources_and_sinks():
    from kpiforge._project import expand_env as expand_source_env

    with pytest.raises(SourceError, match="environment variable NOPE is not set"):
        expand_source_env("${NOPE}", {})
    with pytest.raises(KpiforgeError, match=r"^sinks\.ops\.headers\.auth: environment variable NOPE"):
        expand_sink_env({"headers": {"auth": "${NOPE}"}}, "sinks.ops", {})


def write_plugin(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.py").write_text(textwrap.dedent(body))


@pytest.mark.parametrize("mark", ["", "(trylast=True)", "(tryfirst=True)"])
def test_builtins_keep_their_names_whatever_the_hook_order(tmp_path, mark):
    write_plugin(tmp_path, "usurper", f'''
        from kpiforge import hookimpl

        @hookimpl{mark}
        def kpiforge_register_functions(register):
            register("min", lambda *a: 0.0, min_args=1, max_args=None)
            register("twice", lambda x: x * 2, min_args=1, max_args=1)

        @hookimpl{mark}
        def kpiforge_register_sink_types(register):
            register("file", lambda name, settings, context: None)
            register("pager", lambda name, settings, context: None)
    ''')
    with pytest.warns(PluginWarning, match="plugin usurper failed"):
        plugins = load_plugins(tmp_path)
    assert plugins.functions["min"].plugin == "kpiforge.plugins.functions"
    assert {"max", "safe_div", "coalesce"} <= set(plugins.functions)  # every built-in stays
    assert plugins.sink_types["file"].plugin == "kpiforge.plugins.sinks.basic"
    assert {"console", "webhook"} <= set(plugins.sink_types)
    # only the clashing names are refused; the plugin's other registrations stand
    assert plugins.functions["twice"].plugin == "usurper"
    assert plugins.sink_types["pager"].plugin == "usurper"
    problem = plugins.failures["usurper"]
    assert "function 'min' is registered by both plugin 'kpiforge.plugins.functions' and plugin 'usurper'" in problem
    assert "sink 'file' is registered by both plugin 'kpiforge.plugins.sinks.basic' and plugin 'usurper'" in problem


def test_between_two_third_party_plugins_the_first_loaded_keeps_the_name(tmp_path):
    for name, mark in (("alpha", ""), ("beta", "(tryfirst=True)")):
        write_plugin(tmp_path, name, f'''
            from kpiforge import hookimpl

            @hookimpl{mark}
            def kpiforge_register_functions(register):
                register("pct", lambda a, b: a / b * 100, min_args=2, max_args=2)
        ''')
    with pytest.warns(PluginWarning):
        plugins = load_plugins(tmp_path)
    assert plugins.functions["pct"].plugin == "alpha"
    assert "'alpha' and plugin 'beta'" in plugins.failures["beta"]


@pytest.mark.parametrize("marker", ["hookwrapper=True", "wrapper=True"])
def test_a_wrapper_on_a_register_hook_is_an_error(tmp_path, marker):
    write_plugin(tmp_path, "wrapping", f'''
        from kpiforge import hookimpl

        @hookimpl({marker})
        def kpiforge_register_functions(register):
            register("sneaky", lambda x: x, min_args=1, max_args=1)
            return (yield)
    ''')
    with pytest.warns(PluginWarning, match="wrapper"):
        plugins = load_plugins(tmp_path)
    assert "sneaky" not in plugins.functions
    assert "kpiforge_register_functions: a wrapper/hookwrapper implementation" in plugins.failures["wrapping"]
    assert "min" in plugins.functions


@pytest.mark.parametrize("kwargs, problem", [
    ('settings_schema={"type": "array"}', "must describe an object"),
    ('settings_schema={"properties": {"x": {}}, "additionalProperties": False}',
     "must not set 'additionalProperties'"),
    ('settings_schema={"properties": {"inputs": {}}}', "redefines 'inputs'"),
    ('settings_schema={"properties": {"x": {"type": "strin"}}}', "not a valid JSON Schema"),
    ('settings_schema="x: string"', "must be a JSON Schema object"),
    ('secrets="token"', "not a string"),
    ('secrets={"token": "hidden"}', "kind must be one of value, url, token_url"),
    ('capabilities=("files",)', "unknown capability 'files'"),
])
def test_a_bad_type_registration_is_refused_with_its_reason(tmp_path, kwargs, problem):
    write_plugin(tmp_path, "bad", f'''
        from kpiforge import hookimpl

        @hookimpl
        def kpiforge_register_source_types(register):
            register("fine", lambda name, settings, context: None)
            register("bad", lambda name, settings, context: None, {kwargs})
    ''')
    with pytest.warns(PluginWarning, match=re.escape(problem)):
        plugins = load_plugins(tmp_path)
    assert problem in plugins.failures["bad"]
    # atomic: an implementation that raised registers nothing, not even its good names
    assert "fine" not in plugins.source_types and "bad" not in plugins.source_types


def test_a_failing_plugin_is_a_warning_for_library_users(tmp_path):
    write_plugin(tmp_path, "broken", "raise RuntimeError('boom at import')\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = load_plugins(tmp_path)
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    assert len(messages) == 1 and "plugin broken failed" in messages[0] and "boom at import" in messages[0]
    assert caught[0].filename == __file__  # points at the caller, not at kpiforge's internals
    engine = Engine.load(plugins=plugins)
    assert "boom at import" in engine.plugins.failures["broken"]


def test_the_composed_schema_is_publishable_and_has_each_registered_type(api):
    from kpiforge._schema import check_schema
    from kpiforge._settings import project_schema

    schema = project_schema(api)
    assert check_schema(schema) == []
    source_types = [b["if"]["properties"]["type"].get("const")
                    for b in schema["$defs"]["source"]["allOf"]]
    assert {"api", "csv", "sql", "records"} <= set(source_types)
    json.dumps(schema)  # plain JSON, ready to publish


CORE_FILES = ("_plugins.py", "_project.py", "_project_checks.py", "_project_sources.py", "_run.py",
              "_run_grid.py", "_run_periods.py", "_run_plan.py", "_run_reasons.py", "_run_records.py",
              "_run_sources.py", "_settings.py", "_env.py", "_redact.py",
              "hookspecs.py", "alerts/_routing.py", "alerts/_config.py")


def test_the_core_names_no_builtin_type():
    engine_dir = Path(__file__).resolve().parent.parent / "engine"
    builtin = sorted({*load_plugins().source_types, *load_plugins().sink_types})
    quoted = re.compile(r"""["'](%s)["']""" % "|".join(map(re.escape, builtin)))
    for name in CORE_FILES:
        found = quoted.findall((engine_dir / name).read_text())
        assert not found, f"engine/{name} names built-in types {found}"
    schema = (engine_dir.parent / "schemas" / "project.schema.json").read_text()
    assert not re.search(r"\b(csv|duckdb|sqlite|webhook|slack|email|apprise|dataframe)\b", schema)


def test_every_builtin_settings_schema_passes_the_full_check():
    """Built-ins skip the metaschema check at load time (it was most of the start-up cost of a
    command); this test is where their schemas get it, so a broken one still fails."""
    from kpiforge._plugins import load_plugins
    from kpiforge._settings import check_settings_schema

    plugins = load_plugins()
    checked = 0
    for kind, table in (("source", plugins.source_types), ("sink", plugins.sink_types)):
        for reg in table.values():
            if reg.plugin.startswith("kpiforge.plugins.") and reg.settings_schema is not None:
                assert check_settings_schema(kind, dict(reg.settings_schema)) == [], reg.name
                checked += 1
    assert checked >= 5


def test_a_third_party_settings_schema_is_still_checked_against_the_metaschema():
    import kpiforge
    from kpiforge._plugins import load_plugins

    class Bad:
        @kpiforge.hookimpl
        def kpiforge_register_sink_types(self, register):
            register("bad-sink", lambda *a: None,
                     settings_schema={"properties": {"x": {"type": "strin"}}})

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plugins = load_plugins(extra=(Bad(),))
    assert "bad-sink" not in plugins.sink_types
    assert any("not a valid JSON Schema" in p for p in plugins.failures.values())
