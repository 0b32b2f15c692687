"""The public plugin API is a real boundary.

* Built-in plugins are written only against public kpiforge modules, as a third-party plugin
  must be: no ``kpiforge._x``, ``kpiforge.<pkg>._x``, private name or ``from .._x`` import.
* Every public module has a sorted ``__all__`` whose names exist and are documented.
* ``kpiforge.sources`` offers the SQL toolkit of the built-in sources without importing it (nor
  duckdb) until a name of it is used.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "plugins"

PUBLIC_MODULES = ["kpiforge", "kpiforge.alerts", "kpiforge.commands", "kpiforge.errors",
                  "kpiforge.hookspecs", "kpiforge.periods", "kpiforge.sinks", "kpiforge.sources"]


# ----------------------------------------------------------------------------- private imports

def _module_name(path: Path) -> list[str]:
    parts = list(path.relative_to(PLUGINS).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ["kpiforge", "plugins", *parts]


def _private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split(".")[1:])


def private_imports(source: str, module: list[str], is_package: bool = False) -> list[str]:
    """Every import in ``source`` (the code of kpiforge module ``module``) that reaches a
    private kpiforge module or name, as ``line: text``. Imports of the module's own package
    (``from ._sql import x``) are its own business; climbing out of it (``from .._x``) is not."""
    package = module if is_package else module[:-1]
    found = []

    def public_names(name: str) -> set[str] | None:
        try:
            return set(getattr(importlib.import_module(name), "__all__", ()))
        except ImportError:
            return None

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "kpiforge" and _private(alias.name):
                    found.append(f"{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:
                continue
            spelled = "." * node.level + (node.module or "")
            if node.level > len(package):  # climbs out of kpiforge itself
                found.append(f"{node.lineno}: from {spelled} import ...")
                continue
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "kpiforge":
                continue
            if _private(target):
                found.append(f"{node.lineno}: from {spelled} import ...")
                continue
            allowed = public_names(target)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if alias.name.startswith("_"):
                    found.append(f"{node.lineno}: from {spelled} import {alias.name}")
                elif allowed is not None and alias.name not in allowed and not _is_module(submodule):
                    found.append(f"{node.lineno}: from {spelled} import {alias.name} "
                                 f"(not in {target}.__all__)")
    return found


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def plugin_files() -> list[Path]:
    return sorted(PLUGINS.rglob("*.py"))


def violations(path: Path) -> list[str]:
    return private_imports(path.read_text(encoding="utf-8"), _module_name(path),
                           path.name == "__init__.py")


@pytest.mark.parametrize("source, expected", [
    ("from kpiforge._sources import SqlSource", ["1: from kpiforge._sources import ..."]),
    ("import kpiforge._duckdb", ["1: import kpiforge._duckdb"]),
    ("def f():\n    from kpiforge.alerts._state import Store", ["2: from kpiforge.alerts._state import ..."]),
    ("from kpiforge import _project", ["1: from kpiforge import _project"]),
    ("from kpiforge.errors import _MORE", ["1: from kpiforge.errors import _MORE"]),
    ("from kpiforge.errors import MAX_ECHO", ["1: from kpiforge.errors import MAX_ECHO (not in kpiforge.errors.__all__)"]),
    ("from .._redact import redact_url", ["1: from .._redact import ..."]),
    ("from ... import _yamlio", ["1: from ... import _yamlio"]),
    ("from ...._x import y", ["1: from ...._x import ..."]),
    ("if True:\n    import kpiforge._run as run", ["2: import kpiforge._run"]),
    # what a plugin may do
    ("from ._sql import build_aggregate_query", []),
    ("from kpiforge.sources import SqlSource, SourceRequest", []),
    ("from kpiforge.errors import SourceError\nimport kpiforge\nimport kpiforge.sources", []),
    ("from kpiforge.plugins.sources import files", []),
    ("import duckdb\nfrom os import _exit", []),
])
def test_the_checker_finds_every_kind_of_private_import(source, expected):
    assert private_imports(source, ["kpiforge", "plugins", "sinks", "http"]) == expected


def test_the_checker_sees_the_plugin_files():
    checked = {p.relative_to(ROOT).as_posix() for p in plugin_files()}
    assert {"plugins/functions.py", "plugins/sources/files.py", "plugins/sources/databases.py",
            "plugins/sources/records.py", "plugins/sources/_sqlsource.py",
            "plugins/sinks/http.py", "plugins/sinks/email.py", "plugins/alerting_cli.py"} <= checked


@pytest.mark.parametrize("path", plugin_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_plugins_import_only_the_public_api(path):
    found = violations(path)
    assert not found, f"{path.relative_to(ROOT)} imports private kpiforge API: {found}"


# ----------------------------------------------------------------------------- public modules

def _isort_key(name: str) -> tuple[int, str]:
    # ruff RUF022 / isort style: CONSTANTS, then Classes, then functions
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def _own_doc(obj: object) -> str:
    doc = vars(obj).get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    doc = (doc or "").strip()
    if isinstance(obj, type) and doc.startswith(f"{obj.__name__}("):  # made up by @dataclass
        return ""
    return doc


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_modules_have_a_sorted_resolving_documented_all(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        pytest.skip(f"{name} does not exist (yet)")
    assert (module.__doc__ or "").strip(), f"{name} needs a docstring"
    exported = list(getattr(module, "__all__", ()))
    assert exported, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    assert exported in (sorted(exported), sorted(exported, key=_isort_key)), f"{name}.__all__ is not sorted"
    undocumented = []
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.__all__ lists {attribute}, which it lacks"
        obj = getattr(module, attribute)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not _own_doc(obj):
            undocumented.append(attribute)
    assert not undocumented, f"{name}: without a docstring: {undocumented}"


def test_the_documentation_check_sees_a_missing_docstring():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Bare:
        x: int

    class Child(Bare):
        pass

    def bare() -> None:
        pass

    assert not _own_doc(Bare) and not _own_doc(Child) and not _own_doc(bare)
    assert _own_doc(test_the_documentation_check_sees_a_missing_docstring) == ""
    assert _own_doc(private_imports)


# ----------------------------------------------------------------------------- kpiforge.sources

def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True,
                          capture_output=True, text=True, cwd=ROOT).stdout


def test_importing_the_source_contract_loads_neither_duckdb_nor_the_sql_builders():
    out = _python("""
        import sys
        import kpiforge
        import kpiforge.sources as sources
        print(sorted(m for m in sys.modules if m == "duckdb" or m.startswith(("duckdb.",
              "kpiforge.plugins.sources."))))
        base = sources.SqlSource
        print(base.__module__, "duckdb" in sys.modules)
        print(sources.duckdb_session.__module__, "duckdb" in sys.modules)
        print("SqlSource" in dir(sources), "build_aggregate_query" in dir(sources))
    """).splitlines()
    assert out[0] == "[]"
    assert out[1] == "kpiforge.plugins.sources._sqlsource False"
    assert out[2] == "kpiforge.plugins.sources._duckdb False"  # duckdb loads when a session opens
    assert out[3] == "True True"


def _runtime_imports(path: Path, package: list[str]) -> set[str]:
    """Modules ``path`` imports outside ``if TYPE_CHECKING:`` blocks, resolved to full names."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package[:len(package) - child.level + 1] if child.level else []
                module = ".".join(base + ([child.module] if child.module else []))
                found.update(f"{module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def test_the_core_holds_no_sql_machinery():
    engine = ROOT / "engine"
    assert not (engine / "_sources.py").exists()
    for path in sorted(engine.rglob("*.py")):
        parts = ["kpiforge", *path.relative_to(engine).with_suffix("").parts]
        reached = [m for m in _runtime_imports(path, parts[:-1])  # __init__ is in parts
                   if m.startswith(("kpiforge.plugins.sources", "duckdb"))]
        assert not reached, f"{path.relative_to(ROOT)} imports {reached}"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        assert not classes & {"SqlSource", "Dialect", "DuckDBDialect", "DuckDBSession"}, path


def test_every_name_of_kpiforge_sources_is_the_one_the_built_in_sources_use():
    import kpiforge.sources as sources
    from kpiforge.plugins.sources import _dialects, _sql, _sqlsource, databases, files, records

    assert sources.SqlSource is _sqlsource.SqlSource is files.FileSource.__mro__[1] \
        is records.RecordsSource.__mro__[1]
    assert sources.DuckDBDialect is _dialects.DuckDBDialect is type(databases.DuckDBSource.dialect)
    assert sources.build_aggregate_query is _sql.build_aggregate_query
    assert issubclass(files.FileSource, sources.SqlSource)
    for name in sources.__all__:
        assert getattr(sources, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sources.nope  # noqa: B018


def test_a_third_party_sql_source_needs_only_kpiforge_sources(tmp_path):
    import sqlite3
    from contextlib import contextmanager
    from datetime import date

    import kpiforge.sources as ks

    database = tmp_path / "shop.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE orders (ts TEXT, amount REAL)")
        connection.executemany("INSERT INTO orders VALUES (?, ?)",
                               [("2026-10-01 10:00:00", 10.0), ("2026-10-20 10:00:00", 5.0),
                                ("2026-11-02 10:00:00", 7.0)])

    class Session:
        def __init__(self, connection):
            self.connection = connection

        def query(self, sql, params):
            return ks.dbapi_columns(self.connection.execute(sql, dict(params)))

        def describe(self, relation, params):
            cursor = self.connection.execute(f"SELECT * FROM {relation} AS __src LIMIT 0")
            return {d[0]: "" for d in cursor.description}

    class Orders(ks.SqlSource):
        dialect = ks.SqliteDialect()

        def relation(self, params):
            return ks.table_or_query(self.name, {"table": "orders"})

        def _span(self, request):
            from datetime import datetime
            return datetime(2026, 9, 1), datetime(2026, 12, 1)

        @contextmanager
        def _session(self, setup):
            connection = sqlite3.connect(database)
            try:
                yield Session(connection)
            finally:
                connection.close()

    source = Orders("shop", {"time": "ts", "inputs": {"revenue": {"column": "amount", "agg": "sum"}}})
    assert isinstance(source, ks.Source)
    request = ks.SourceRequest("month", "Europe/Paris", ranges=((date(2026, 10, 1), date(2026, 12, 1)),),
                               inputs=source.inputs)
    frame = source.fetch(request)
    assert list(frame.periods) == ["2026-10", "2026-11"]
    assert list(frame.inputs["revenue"]) == [15.0, 7.0]
