"""`kpiforge --help` from the help cache is exactly click's text; `--version` is click's line.

The entry point (kpiforge._launch) answers both without importing click; these tests hold it to
what the real command group prints, at several widths, and check when the cache is not used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kpiforge import _help_cache

CLICK_HELP = ("import sys\nfrom kpiforge.cli import main\ntry:\n    main(sys.argv[1:])\n"
              "except SystemExit as exc:\n    sys.exit(exc.code)")


def run(argv: list[str], cache: Path | None, *, importtime: bool = False,
        **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KPIFORGE_CACHE_DIR", "KPIFORGE_NO_CACHE", "PYTHONPROFILEIMPORTTIME")}
    if cache is not None:
        env["KPIFORGE_CACHE_DIR"] = str(cache)
    env.update(env_vars)
    flags = ["-X", "importtime"] if importtime else []
    return subprocess.run([sys.executable, *flags, *argv], capture_output=True, text=True,
                          timeout=120, env=env)


def launched(args: list[str], cache: Path | None, **env_vars: str) -> tuple[str, set[str]]:
    """(stdout, imported modules) of `kpiforge ARGS` through the console script's entry."""
    proc = run(["-m", "kpiforge", *args], cache, importtime=True, **env_vars)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
             if line.startswith("import time:") and line.count("|") == 2}
    return proc.stdout, names


def click_output(args: list[str], **env_vars: str) -> str:
    proc = run(["-c", CLICK_HELP, *args], None, KPIFORGE_NO_CACHE="1", **env_vars)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("columns", ["50", "80", "123", "240"])
@pytest.mark.parametrize("option", ["--help", "-h"])
def test_help_from_the_cache_is_clicks_text_at_every_width(tmp_path, columns, option):
    expected = click_output(["--help"], COLUMNS=columns)
    first, first_imports = launched([option], tmp_path, COLUMNS=columns)
    second, second_imports = launched([option], tmp_path, COLUMNS=columns)
    assert first == second == expected
    assert "click" in first_imports  # rendered by click once
    assert "click" not in second_imports and "kpiforge.cli" not in second_imports
    assert len(list((tmp_path / "help").iterdir())) == 1


def test_another_width_is_another_entry(tmp_path):
    narrow, _ = launched(["--help"], tmp_path, COLUMNS="60")
    wide, _ = launched(["--help"], tmp_path, COLUMNS="200")
    assert narrow != wide and len(list((tmp_path / "help").iterdir())) == 2
    assert launched(["--help"], tmp_path, COLUMNS="60")[0] == narrow


def test_version_is_clicks_line_without_click():
    out, imports = launched(["--version"], None)
    assert out == click_output(["--version"])
    assert "click" not in imports


def test_no_cache_still_prints_the_help_and_writes_nothing(tmp_path):
    out, _ = launched(["--help"], tmp_path, KPIFORGE_NO_CACHE="1", COLUMNS="80")
    assert out == click_output(["--help"], COLUMNS="80")
    assert not (tmp_path / "help").exists()


def test_a_plugins_folder_bypasses_the_cache_and_its_commands_show(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "hello.py").write_text(
        "import click\nimport kpiforge\n\n\n@kpiforge.hookimpl\n"
        "def kpiforge_register_commands(cli):\n"
        "    @cli.command()\n    def hello():\n        \"\"\"Say hello.\"\"\"\n", encoding="utf-8")
    cache = tmp_path / "cache"
    launched(["--help"], cache)  # the built-ins' text is cached
    out, imports = launched(["--help"], cache, KPIFORGE_PLUGINS_DIR=str(plugins))
    assert "hello" in out and "Say hello." in out and "click" in imports
    assert "hello" not in launched(["--help"], cache)[0]


@pytest.mark.parametrize("content", [b"", b"garbage", b"kpiforge help cache 1\nother\nUsage"])
def test_a_foreign_entry_is_a_miss_and_is_replaced(tmp_path, content):
    expected, _ = launched(["--help"], tmp_path, COLUMNS="80")
    (entry,) = (tmp_path / "help").iterdir()
    entry.write_bytes(content)
    out, imports = launched(["--help"], tmp_path, COLUMNS="80")
    assert out == expected and "click" in imports
    assert entry.read_bytes().endswith(expected.encode())


def test_the_key_follows_the_code_the_width_and_the_locale(tmp_path, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    (code / "cli.py").write_text("x = 1\n", encoding="utf-8")
    (tmp_path / "click-9.9.dist-info").mkdir()
    click = tmp_path / "click"
    click.mkdir()
    monkeypatch.setattr(_help_cache, "_code_roots", lambda: [str(code), str(click)])
    monkeypatch.setenv("KPIFORGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "80")
    for name in ("KPIFORGE_NO_CACHE", "KPIFORGE_PLUGINS_DIR", "KPIFORGE_LOAD_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    keys = [_help_cache.help_key()]
    (code / "cli.py").write_text("x = 22\n", encoding="utf-8")
    keys.append(_help_cache.help_key())
    (code / "new.py").write_text("", encoding="utf-8")
    keys.append(_help_cache.help_key())
    (tmp_path / "click-9.9.dist-info").rename(tmp_path / "click-10.0.dist-info")
    keys.append(_help_cache.help_key())
    monkeypatch.setenv("COLUMNS", "81")
    keys.append(_help_cache.help_key())
    monkeypatch.setenv("LANGUAGE", "fr")
    keys.append(_help_cache.help_key())
    assert None not in keys and len(set(keys)) == len(keys)
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0")
    assert _help_cache.help_key() == keys[-1]  # bytecode is not code the help depends on
    for name, value in [("KPIFORGE_LOAD_PLUGINS", "a"), ("KPIFORGE_NO_CACHE", "1")]:
        monkeypatch.setenv(name, value)
        assert _help_cache.help_key() is None
        monkeypatch.delenv(name)


@pytest.mark.parametrize("columns", [None, "", "abc", "0", "-3", "1", "97"])
def test_terminal_columns_is_shutils(monkeypatch, columns):
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert _help_cache.terminal_columns() == shutil.get_terminal_size().columns


def test_the_plugin_switches_are_the_ones_the_loaders_read():
    from kpiforge import _launch, _plugins, cli

    assert _help_cache._PLUGIN_ENV == (cli.PLUGINS_DIR_ENV, _plugins.LOAD_PLUGINS_ENV)
    assert _launch._PLUGINS_DIR_ENV == cli.PLUGINS_DIR_ENV
    assert _help_cache._ENTRY_POINT_GROUP == _plugins.ENTRY_POINT_GROUP


def test_the_console_script_is_the_launcher():
    import importlib.metadata

    (script,) = [ep for ep in importlib.metadata.entry_points(group="console_scripts")
                 if ep.name == "kpiforge"]
    assert script.value == "kpiforge._launch:main"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["validate"]])
def test_a_closed_stdout_is_no_traceback(tmp_path, args):
    """`kpiforge --help >&-`: Python starts with sys.stdout None; nothing to print to, no crash."""
    env = {**os.environ, "KPIFORGE_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "kpiforge", *args], stderr=subprocess.PIPE,
                          text=True, timeout=120, env=env, cwd=tmp_path,
                          preexec_fn=lambda: os.close(1))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_the_help_cache_keeps_its_newest_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("KPIFORGE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("KPIFORGE_NO_CACHE", raising=False)
    monkeypatch.setattr(_help_cache, "MAX_ENTRIES", 2)
    keys = [f"{i:064x}" for i in range(4)]
    for n, key in enumerate(keys):
        _help_cache.write_help(key, f"help {n}\n")
        os.utime(tmp_path / "help" / key, ns=(n * 10**9, n * 10**9))  # written in this order
    assert sorted(p.name for p in (tmp_path / "help").iterdir()) == keys[2:]
    assert _help_cache.read_help(keys[3]) == "help 3\n" and _help_cache.read_help(keys[0]) is None
