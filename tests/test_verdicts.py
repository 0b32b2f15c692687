"""The cache of jsonschema verdicts (kpiforge._verdicts): a shortcut only for files jsonschema
accepted before; anything else (a changed byte, a changed schema, a corrupt or missing cache, a
cache folder that cannot be written, the cache turned off) goes to jsonschema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kpiforge._schema as schema_module
from kpiforge import DefinitionError
from kpiforge import _verdicts
from kpiforge._definitions import load_catalog
from kpiforge._formulas import default_functions

ROOT = Path(__file__).resolve().parent.parent
VALID = ROOT / "definitions" / "acquisition"
INVALID = ROOT / "tests" / "fixtures" / "invalid"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(_verdicts.CACHE_DIR_ENV, str(folder))
    monkeypatch.delenv(_verdicts.NO_CACHE_ENV, raising=False)
    return folder


@pytest.fixture
def calls(monkeypatch):
    """The documents jsonschema is asked about, by file name."""
    seen: list[str] = []
    validate = schema_module.validate

    def counting(document, schema, **kwargs):
        seen.append(Path(document.path).name)
        return validate(document, schema, **kwargs)

    monkeypatch.setattr(schema_module, "validate", counting)
    return seen


@pytest.fixture(scope="module")
def functions():
    return default_functions()


def definitions(tmp_path: Path, source: Path = VALID) -> Path:
    target = tmp_path / "defs"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.test.yaml"))
    return target


def load(folder: Path, functions) -> tuple[object, str]:
    try:
        catalog = load_catalog([folder], functions=functions)
    except DefinitionError as exc:
        return None, "\n".join(map(str, exc.diagnostics))
    return catalog, ""


def entries(cache: Path) -> list[str]:
    path = cache / "schema-verdicts"
    return path.read_text().splitlines()[1:] if path.exists() else []


def test_an_accepted_file_is_not_validated_again_and_loads_the_same(tmp_path, cache, calls,
                                                                     functions):
    folder = definitions(tmp_path)
    first, _ = load(folder, functions)
    assert sorted(set(calls)) == ["cpc.yaml", "cpl.yaml", "ctr.yaml", "lead_conversion_rate.yaml"]
    assert len(entries(cache)) == 4
    calls.clear()
    second, _ = load(folder, functions)
    assert calls == []
    assert second.definitions == first.definitions and second.order == first.order
    assert {k: f.text for k, f in second.formulas.items()} == \
        {k: f.text for k, f in first.formulas.items()}
    assert second.diagnostics == first.diagnostics and second.objectives == first.objectives


@pytest.mark.parametrize("change", [
    lambda text: text + "\n",
    lambda text: text + "# a comment\n",
    lambda text: text.replace("description:", "description:  ", 1),
])
def test_any_byte_changed_is_validated_again(tmp_path, cache, calls, functions, change):
    folder = definitions(tmp_path)
    load(folder, functions)
    path = folder / "ctr.yaml"
    path.write_text(change(path.read_text()))
    calls.clear()
    load(folder, functions)
    assert set(calls) == {"ctr.yaml"}


def test_an_invalid_file_is_never_cached_and_always_gives_the_same_errors(tmp_path, cache, calls,
                                                                          functions):
    folder = definitions(tmp_path, INVALID)
    _, first = load(folder, functions)
    assert first
    schema_checked = set(calls)
    calls.clear()
    _, second = load(folder, functions)
    assert second == first
    assert "d_schema.yaml" in schema_checked and "d_schema.yaml" in calls
    with pytest.raises(DefinitionError):
        load_catalog([folder], functions=functions)


def test_a_schema_change_is_a_miss(tmp_path, cache, calls, functions, monkeypatch):
    folder = definitions(tmp_path)
    load(folder, functions)
    schemas = tmp_path / "schemas"
    shutil.copytree(_verdicts._root(), schemas, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    kpi = schemas / "kpi.schema.json"
    kpi.write_text(kpi.read_text().replace('"title"', '"title" ', 1))
    monkeypatch.setattr(_verdicts, "_root", lambda: schemas)
    _verdicts._context.cache_clear()
    try:
        calls.clear()
        load(folder, functions)
        assert len(set(calls)) == 4
    finally:
        _verdicts._context.cache_clear()


@pytest.mark.parametrize("content", [
    b"", b"\x00\xff garbage", b"kpiforge schema verdicts 1\nnot a key\n",
    b"kpiforge schema verdicts 1\n" + b"a" * 64,  # cut short: no final newline
    b"kpiforge schema verdicts 999\n" + b"a" * 64 + b"\n",
])
def test_a_corrupt_cache_is_a_miss_and_is_replaced(tmp_path, cache, calls, functions, content):
    folder = definitions(tmp_path)
    load(folder, functions)
    (cache / "schema-verdicts").write_bytes(content)
    calls.clear()
    catalog, problems = load(folder, functions)
    assert catalog is not None and not problems
    assert len(set(calls)) == 4
    assert len(entries(cache)) == 4  # rewritten whole


def test_a_cache_of_someone_elses_keys_is_no_hit(tmp_path, cache, calls, functions):
    folder = definitions(tmp_path)
    cache.mkdir()
    (cache / "schema-verdicts").write_text("kpiforge schema verdicts 1\n" + "0" * 64 + "\n")
    load(folder, functions)
    assert len(set(calls)) == 4


def test_the_cache_turned_off_writes_nothing_and_always_validates(tmp_path, cache, calls,
                                                                  functions, monkeypatch):
    monkeypatch.setenv(_verdicts.NO_CACHE_ENV, "1")
    folder = definitions(tmp_path)
    load(folder, functions)
    load(folder, functions)
    assert len(calls) == 8 and not cache.exists()


def test_an_unwritable_cache_folder_is_no_cache_and_no_error(tmp_path, calls, functions,
                                                             monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(_verdicts.CACHE_DIR_ENV, str(blocker / "cache"))
    folder = definitions(tmp_path)
    for _ in range(2):
        catalog, problems = load(folder, functions)
        assert catalog is not None and not problems
    assert len(calls) == 8


def test_the_cache_is_bounded_keeping_the_newest(tmp_path, cache, calls, functions, monkeypatch):
    monkeypatch.setattr(_verdicts, "MAX_ENTRIES", 2)
    folder = definitions(tmp_path)
    load(folder, functions)
    assert len(entries(cache)) == 2
    calls.clear()
    load(folder, functions)
    assert len(set(calls)) == 2  # the two older verdicts were dropped


@pytest.mark.parametrize("env, expected", [
    ({"KPIFORGE_CACHE_DIR": "/x/y"}, "/x/y"),
    ({"XDG_CACHE_HOME": "/xdg"}, "/xdg/kpiforge"),
    ({"XDG_CACHE_HOME": "relative", "HOME": "/home/u"}, "/home/u/.cache/kpiforge"),
    ({"HOME": "/home/u"}, "/home/u/.cache/kpiforge"),
    ({"HOME": "/home/u", "KPIFORGE_NO_CACHE": "1"}, None),
    ({"HOME": "/home/u", "KPIFORGE_NO_CACHE": "0"}, "/home/u/.cache/kpiforge"),
])
def test_where_the_cache_lives(monkeypatch, env, expected):
    for name in ("KPIFORGE_CACHE_DIR", "XDG_CACHE_HOME", "KPIFORGE_NO_CACHE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    found = _verdicts.cache_dir()
    assert (str(found) if found else None) == expected


def test_the_cache_is_never_written_next_to_the_definitions(tmp_path, monkeypatch):
    monkeypatch.delenv(_verdicts.CACHE_DIR_ENV, raising=False)
    monkeypatch.delenv(_verdicts.NO_CACHE_ENV, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    folder = definitions(tmp_path)
    before = sorted(p.name for p in folder.rglob("*"))
    proc = subprocess.run([sys.executable, "-m", "kpiforge", "validate", str(folder)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in folder.rglob("*")) == before
    assert (home / ".cache" / "kpiforge" / "schema-verdicts").is_file()


# ------------------------------------------------------------------ the project file


def project_calls(tmp_path: Path, text: str, calls: list[str], times: int = 2) -> list[str]:
    from kpiforge import Project, ProjectError

    path = tmp_path / "kpiforge.yaml"
    path.write_text(text)
    messages = []
    for _ in range(times):
        try:
            Project.load(path)
            messages.append("")
        except ProjectError as exc:
            messages.append(str(exc))
    return messages


def test_an_accepted_project_file_is_not_validated_again(tmp_path, cache, calls):
    assert project_calls(tmp_path, "currency: EUR\n", calls) == ["", ""]
    assert calls == ["kpiforge.yaml"]


def test_an_invalid_project_file_always_goes_to_jsonschema(tmp_path, cache, calls):
    first, second = project_calls(tmp_path, "currency: EUR\nsoruces: {}\n", calls)
    assert "unknown field 'soruces'" in first and second == first
    assert calls == ["kpiforge.yaml", "kpiforge.yaml"]


def test_a_project_verdict_is_about_the_composed_schema(tmp_path, cache, calls):
    """Another plugin set composes another project schema: its verdicts are its own."""
    from kpiforge import Project
    from kpiforge._plugins import load_plugins

    import kpiforge

    class Extra:
        __name__ = "extra"

        @kpiforge.hookimpl
        def kpiforge_register_sink_types(self, register):
            register("extra_sink", lambda *a, **k: None, settings_schema={
                "type": "object", "properties": {"url": {"type": "string"}}})

    path = tmp_path / "kpiforge.yaml"
    path.write_text("currency: EUR\n")
    Project.load(path)
    Project.load(path, plugins=load_plugins(extra=(Extra(),)))
    Project.load(path, plugins=load_plugins(extra=(Extra(),)))
    assert calls == ["kpiforge.yaml", "kpiforge.yaml"]


def test_a_project_from_a_dict_is_always_validated(tmp_path, cache, calls):
    from kpiforge import Project

    for _ in range(2):
        Project.from_dict({"currency": "EUR"}, root=tmp_path)
    assert len(calls) == 2


def test_concurrent_writers_leave_a_whole_cache(tmp_path, cache):
    """Each writer renames its own temporary file over the cache: the last one wins whole."""
    import os

    folders = []
    for name in ("a", "b"):
        folders.append(definitions(tmp_path / name))
    env = {**os.environ, _verdicts.CACHE_DIR_ENV: str(cache)}
    procs = [subprocess.Popen([sys.executable, "-m", "kpiforge", "validate", str(f)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for f in folders * 2]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    keys = entries(cache)
    assert 4 <= len(keys) <= 8 and all(len(k) == 64 for k in keys)
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]
