"""Definition packs: registered through ``kpiforge_register_packs``, checked by the host, usable
wherever a definitions path is (``Engine.load``, a project's ``definitions:``, every ``-d``),
listed by ``kpiforge packs``; the bundled catalog is the pack ``kpiforge:standard``; and
``examples/pack`` installed with pip and used from the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import kpiforge
from kpiforge import DefinitionError, Engine, ProjectError, hookimpl
from kpiforge._defpaths import bundled_definitions_dir
from kpiforge._plugins import load_plugins

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pack"

# a team KPI built on a standard one: alone it does not load, with kpiforge:standard it does
DOUBLE_CTR = textwrap.dedent("""\
    id: double_ctr
    name: Double CTR
    labels: {en: Double CTR}
    formula: ctr * 2
    unit: percent
    direction: higher_is_better
""")


def pack_plugin(**packs: dict) -> types.SimpleNamespace:
    """A plugin module registering each ``name=kwargs`` (underscores in names become ':')."""

    @hookimpl
    def kpiforge_register_packs(register):
        for name, kwargs in packs.items():
            register(name.replace("__", ":"), **kwargs)

    return types.SimpleNamespace(__name__="team_packs", kpiforge_register_packs=kpiforge_register_packs)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "double_ctr.yaml").write_text(DOUBLE_CTR)
    return pack


# -- registration ------------------------------------------------------------------------------


def test_the_bundled_catalog_is_the_pack_kpiforge_standard_of_a_builtin_plugin():
    plugins = load_plugins()
    reg = plugins.packs["kpiforge:standard"]
    assert (reg.plugin, plugins.origins[reg.plugin]) == ("kpiforge.plugins.packs", "builtin")
    assert reg.obj.path == bundled_definitions_dir().resolve()
    assert (reg.obj.version, reg.obj.owner, reg.obj.requires) == (kpiforge.__version__, "kpiforge", ())
    assert "pack:kpiforge:standard" in next(i for i in plugins.infos()
                                            if i.name == "kpiforge.plugins.packs").registered


@pytest.mark.parametrize("name, kwargs, problem", [
    ("acme", {}, "invalid pack name 'acme' (expected namespace:name in lower case"),
    ("Acme:sales", {}, "invalid pack name 'Acme:sales'"),
    ("a:sales", {}, "invalid pack name 'a:sales'"),  # one letter before the colon is a drive
    ("acme:sales/ctr", {}, "invalid pack name 'acme:sales/ctr'"),
    ("kpiforge:extra", {}, "pack 'kpiforge:extra': the namespace 'kpiforge' is kept for the packs kpiforge ships"),
    ("acme:sales", {"version": 2}, "version must be a string such as '1.2.0', got 2"),
    ("acme:sales", {"version": "v1"}, "version must be a string such as '1.2.0', got 'v1'"),
    ("acme:sales", {"owner": ["sales"]}, "owner must be a string, got list"),
    ("acme:sales", {"files": "relative/defs"}, "files must be an absolute path or an importlib.resources folder, got relative path 'relative/defs'"),
    ("acme:sales", {"files": 42}, "files must be a path or an importlib.resources folder, not int"),
    ("acme:sales", {"files": "/nonexistent/kpis"}, "files '/nonexistent/kpis' is not a folder on disk"),
    ("acme:sales", {"requires": ["standard"]}, "requires must name other packs (namespace:name), got 'standard'"),
    ("acme:sales", {"requires": ["acme:sales"]}, "requires must name other packs (namespace:name), got 'acme:sales'"),
])
def test_a_bad_registration_is_a_failure_of_that_plugin_and_registers_nothing(folder, name, kwargs, problem):
    plugin = pack_plugin(**{name.replace(":", "__"): {"files": folder, "version": "1.0.0", **kwargs}})
    with pytest.warns(kpiforge.errors.PluginWarning):
        plugins = load_plugins(extra=(plugin,))
    assert problem in plugins.failures["team_packs"]
    assert set(plugins.packs) == {"kpiforge:standard"}


def test_an_importlib_resources_folder_is_a_pack_folder():
    from importlib import resources

    plugin = pack_plugin(acme__copy={"files": resources.files("kpiforge.definitions") / "seo",
                                     "version": "1.0.0"})
    plugins = load_plugins(extra=(plugin,))
    assert plugins.packs["acme:copy"].obj.path == (bundled_definitions_dir() / "seo").resolve()
    assert "pages_per_session" in Engine.load("acme:copy", plugins=plugins).definitions


def test_a_pack_name_two_plugins_register_is_kept_by_the_first_and_names_both(folder, tmp_path):
    first = pack_plugin(acme__sales={"files": folder, "version": "1.0.0", "owner": "sales"})
    second = pack_plugin(acme__sales={"files": tmp_path, "version": "9.0.0"})
    second.__name__ = "usurper"
    with pytest.warns(kpiforge.errors.PluginWarning):
        plugins = load_plugins(extra=(first, second))
    assert plugins.packs["acme:sales"].obj.version == "1.0.0"
    assert plugins.failures["usurper"] == (
        "pack 'acme:sales' is registered by both plugin 'team_packs' and plugin 'usurper'; "
        "the latter is ignored")


def test_the_standard_name_cannot_be_taken_by_a_third_party(folder):
    plugin = pack_plugin(kpiforge__standard={"files": folder, "version": "1.0.0"})
    with pytest.warns(kpiforge.errors.PluginWarning):
        plugins = load_plugins(extra=(plugin,))
    assert plugins.packs["kpiforge:standard"].plugin == "kpiforge.plugins.packs"
    assert "namespace 'kpiforge' is kept" in plugins.failures["team_packs"]


# -- a pack wherever a path is -------------------------------------------------------------------


@pytest.fixture
def plugins(folder):
    return load_plugins(extra=(pack_plugin(
        acme__team={"files": folder, "version": "1.2.0", "owner": "team"},
        acme__needs={"files": folder, "version": "1.0.0", "requires": ["kpiforge:standard"]},
        acme__broken={"files": folder, "version": "1.0.0", "requires": ["acme:gone"]}),))


@pytest.mark.parametrize("items, loaded", [
    (("kpiforge:standard", "acme:team"), {"double_ctr", "ctr", "cpl"}),
    (("acme:needs",), {"double_ctr", "ctr", "cpl"}),  # requires: the standard KPIs come along
    (("kpiforge:standard", "acme:needs"), {"double_ctr", "ctr"}),  # named once is enough
])
def test_engine_load_takes_packs(plugins, items, loaded):
    engine = Engine.load(*items, plugins=plugins)
    assert loaded <= set(engine.definitions)
    assert len(engine.definitions) == len(Engine.load().definitions) + 1  # the catalog and double_ctr
    # a pack's files are shown by pack, not as ../../site-packages/...
    assert engine["double_ctr"].path in ("acme:team/double_ctr.yaml", "acme:needs/double_ctr.yaml")


@pytest.mark.parametrize("items, message", [
    (("acme:tem",), "unknown definitions pack 'acme:tem' (did you mean 'acme:team'?); installed "
                    "packs: acme:broken, acme:needs, acme:team, kpiforge:standard (see kpiforge packs)"),
    (("acme:broken",), "unknown definitions pack 'acme:gone'"),
    (("acme:team",), "'ctr' is neither a declared input nor a KPI id"),
])
def test_an_unknown_or_incomplete_pack_is_an_error(plugins, items, message):
    with pytest.raises(DefinitionError) as info:
        Engine.load(*items, plugins=plugins)
    assert any(message in d.message for d in info.value.errors), info.value.errors


def test_a_project_names_packs_and_their_requirements_come_along(plugins, tmp_path):
    project = tmp_path / "kpiforge.yaml"
    project.write_text("definitions: [acme:needs]\n")
    loaded = kpiforge.Project.load(project, plugins=plugins)
    assert loaded.definitions[0] == bundled_definitions_dir()
    assert {"double_ctr", "ctr"} <= set(loaded.engine.definitions)
    for listed, line_message in [
        ("[acme:neds]", "unknown definitions pack 'acme:neds' (did you mean 'acme:needs'?)"),
        ("[kpiforge:standard, acme:broken]", "'acme:broken' requires unknown definitions pack 'acme:gone'"),
    ]:
        project.write_text(f"definitions: {listed}\n")
        with pytest.raises(ProjectError) as info:
            kpiforge.Project.load(project, plugins=plugins)
        (error,) = info.value.errors
        assert error.code == "unknown-reference" and error.line == 1
        assert line_message in error.message


# -- kpiforge packs ------------------------------------------------------------------------------


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_kpiforge_packs_lists_a_plugins_dir_pack_in_a_table_and_as_json(folder, tmp_path):
    plugins_dir = tmp_path / "plugins"
    plugins_dir.mkdir()
    (plugins_dir / "team_pack.py").write_text(textwrap.dedent(f"""\
        from kpiforge import hookimpl

        @hookimpl
        def kpiforge_register_packs(register):
            register("acme:team", files={str(folder)!r}, version="2.0.1", owner="team",
                     requires=["kpiforge:standard"], doc="The team's KPIs.")
    """))
    proc = run("--plugins-dir", str(plugins_dir), "packs", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)["packs"]}
    assert rows["acme:team"] == {
        "name": "acme:team", "version": "2.0.1", "owner": "team", "kpis": 1,
        "requires": ["kpiforge:standard"], "plugin": "team_pack",
        "origin": str(plugins_dir / "team_pack.py"), "path": str(folder.resolve()),
        "doc": "The team's KPIs."}
    assert (rows["kpiforge:standard"]["kpis"], rows["kpiforge:standard"]["origin"]) == (
        len(Engine.load().definitions), "builtin")
    proc = run("--plugins-dir", str(plugins_dir), "packs", cwd=tmp_path,
               env={**os.environ, "COLUMNS": "300"})
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if "acme:team" in line)
    assert [cell.strip() for cell in line.strip("│ ").split("│")][:4] == ["acme:team", "2.0.1", "team", "1"]
    proc = run("--plugins-dir", str(plugins_dir), "show", "double_ctr", "-d", "acme:team",
               "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["path"] == "acme:team/double_ctr.yaml"


# -- examples/pack, installed with pip -------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """examples/pack installed by pip into a folder of its own (offline, no build isolation),
    and the environment that puts it on the path: kpiforge finds it by its entry point only."""
    pytest.importorskip("setuptools", reason="the dev extras install setuptools to build it")
    pytest.importorskip("wheel", reason="the dev extras install wheel to build it")
    work = tmp_path_factory.mktemp("example-pack")
    source = work / "source"  # a copy: the build writes build/ and *.egg-info next to its files
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(target), str(source)],
                   check=True, timeout=300, capture_output=True)
    return {**os.environ, "PYTHONPATH": str(target), "COLUMNS": "300"}


@pytest.mark.parametrize("args, check", [
    (("packs", "--format", "json"),
     lambda out: {(r["name"], r["version"], r["owner"], r["kpis"], r["plugin"], r["origin"])
                  for r in json.loads(out)["packs"]} >= {
         ("acme:sales", "1.2.0", "sales", 3, "acme_sales", "entry point (kpiforge-acme-sales)")}),
    (("packs",), lambda out: "acme:sales" in out and "kpiforge:standard" in out),
    # the pack's 3 KPIs and the standard ones it requires
    (("validate", "-d", "acme:sales"),
     lambda out: out == f"{len(Engine.load().definitions) + 3} KPIs valid, 0 warnings\n"),
    (("list", "-d", "acme:sales", "--format", "json"),
     lambda out: {"revenue_per_lead", "lead_roi", "win_rate", "cpl"}
     <= {k["id"] for k in json.loads(out)["kpis"]}),
    (("eval", "-d", "acme:sales", "--kpi", "lead_roi", "--format", "json", "--set", "revenue=50000",
      "--set", "customers=100", "--set", "new_customers=5", "--set", "leads=100", "--set", "cost=500"),
     lambda out: {r["kpi"]: (r["value"], r["status"]) for r in json.loads(out)["results"]}["lead_roi"]
     == (5.0, "good")),
    (("test", "-d", "acme:sales"),
     lambda out: "PASS acme:sales/lead_roi.test.yaml: 25 EUR per lead for a 5 EUR lead is a return of 5, good" in out
     and out.endswith(" passed, 0 failed\n")),
], ids=["packs-json", "packs", "validate", "list", "eval", "test"])
def test_the_example_pack_installed_with_pip_is_listed_and_usable(installed, tmp_path, args, check):
    proc = run(*args, cwd=tmp_path, env=installed)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "failed" not in proc.stderr
    assert check(proc.stdout), proc.stdout[-3000:]
