"""The public API is small, explicit and sorted; the plugin contract is typed and documented."""

import ast
import importlib
import inspect
import typing
from pathlib import Path

import pytest

import kpiforge
import kpiforge.errors
from kpiforge import hookspecs

TESTS = Path(__file__).parent


def test_all_is_sorted_and_importable():
    assert kpiforge.__all__ == sorted(kpiforge.__all__)
    for name in kpiforge.__all__:
        assert hasattr(kpiforge, name), name


def test_every_error_derives_from_the_base_error():
    for name in kpiforge.__all__:
        obj = getattr(kpiforge, name)
        # warnings are Exceptions to Python, but kpiforge issues them, it never raises them
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, kpiforge.KpiforgeError), name


def hookspec_functions():
    return [(name, fn) for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if name.startswith("kpiforge_")]


def test_hookspecs_are_typed_and_documented():
    specs = hookspec_functions()
    assert specs, "no hookspec found"
    for name, fn in specs:
        assert fn.__doc__ and len(fn.__doc__.strip()) > 40, f"{name} needs a docstring"
        hints = typing.get_type_hints(fn, globalns=vars(hookspecs) | {"click": __import__("click")})
        params = inspect.signature(fn).parameters
        assert set(params) <= set(hints), f"{name}: every parameter needs a type"
        assert "return" in hints, f"{name}: the return type must be declared"
        assert name in hookspecs.__all__


def test_every_hookspec_has_a_test():
    """Meta-test: a hook nobody exercises is a contract nobody keeps."""
    test_sources = "\n".join(p.read_text() for p in TESTS.glob("test_*.py") if p.name != "test_api.py")
    missing = [name for name, _ in hookspec_functions() if f"def {name}(" not in test_sources]
    assert not missing, f"hookspecs without a test implementing them: {missing}"


# ----------------------------------------------------------------------------- module structure

ROOT = TESTS.parent
PACKAGES = {"kpiforge": ROOT / "engine", "kpiforge.plugins": ROOT / "plugins"}
# The command-line layer: cli.py registers the _cli_* commands, which import cli.py's output
# helpers back at call time. Left to the CLI work (the helpers move to a module of their own);
# test_the_cli_layer_still_has_its_known_cycle says when that is done.


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__main__":  # runs the CLI when imported
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every kpiforge module ``name`` imports, at the top or inside a function (a lazy import
    hides a cycle, it does not remove it); ``if TYPE_CHECKING:`` blocks never run."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name in known)
            elif isinstance(child, ast.ImportFrom):
                base = package[:len(package) - child.level + 1] if child.level else []
                module = ".".join(base + ([child.module] if child.module else []))
                for alias in child.names:
                    target = f"{module}.{alias.name}"
                    if target in known:
                        found.add(target)
                    elif module in known:
                        found.add(module)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(component)

    for v in graph:
        if v not in index:
            connect(v)
    return cycles


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_every_module_imports_on_its_own():
    for name in modules():
        importlib.import_module(name)


def test_no_import_cycle_outside_the_cli_layer():
    graph = import_graph()
    assert "kpiforge._run" in graph["kpiforge._project"]  # the graph sees real imports
    assert "kpiforge._engine" in graph["kpiforge._run"]
    cycles = import_cycles(graph)
    assert not cycles, f"import cycles: {cycles}"


def test_the_dependency_arrow_is_project_then_run_then_engine():
    graph = import_graph()
    assert not graph["kpiforge._engine"] & {"kpiforge._run", "kpiforge._project", "kpiforge.alerts"}
    assert "kpiforge._project" not in graph["kpiforge._run"]


def test_the_core_never_falls_back_to_process_wide_plugins():
    users = [name for name, path in modules().items() if name != "kpiforge._plugins"
             and "default_plugins" in path.read_text(encoding="utf-8")]
    assert not users


def test_engine_is_definitions_and_evaluation_only():
    assert not hasattr(kpiforge.Engine, "run")
    assert callable(kpiforge.Project.run) and callable(kpiforge.Project.dispatch)


# ----------------------------------------------------------------------------- errors

def defined_exceptions() -> list[tuple[str, type]]:
    """Every exception class a kpiforge or plugin module defines (found by ast, then imported)."""
    found = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        classes = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
        module = importlib.import_module(name)
        for class_name in classes:
            obj = getattr(module, class_name, None)
            if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == name:
                found.append((name, obj))
    return found


# Control flow inside the formula evaluator, caught there; never reaches a caller.
# raised and caught inside the engine, never by a caller: a poisoned value, and a unit
# contradiction that the catalog check turns into a located Diagnostic
INTERNAL_SIGNALS = {"kpiforge._guards.Poisoned", "kpiforge._units.UnitError",
                    # caught and listed by the MetricFlow commands; answered as JSON by serve
                    "kpiforge._metricflow_expr.Untranslatable", "kpiforge._serve_api.ApiError"}


def test_every_exception_lives_in_errors_and_derives_from_the_base_error():
    found = defined_exceptions()
    assert ("kpiforge.errors", kpiforge.KpiforgeError) in found  # the scan sees errors.py
    # a private exception is control flow inside one module and never reaches a caller
    public = [(m, c) for m, c in found if not c.__name__.startswith("_")
              and f"{m}.{c.__name__}" not in INTERNAL_SIGNALS]
    misplaced = [f"{m}.{c.__name__}" for m, c in public if m != "kpiforge.errors"]
    assert not misplaced, f"exceptions defined outside kpiforge.errors: {misplaced}"
    orphans = [c.__name__ for _, c in public  # warnings are issued, never raised
               if not issubclass(c, (kpiforge.KpiforgeError, Warning))]
    assert not orphans, f"exceptions not derived from KpiforgeError: {orphans}"


@pytest.mark.parametrize("name", ["RunError", "PeriodError", "StateError", "AlertConfigError",
                                  "MissingExtraError", "ProjectError", "SourceError", "SinkError"])
def test_the_errors_a_caller_catches_are_exported(name):
    error = getattr(kpiforge, name)
    assert issubclass(error, kpiforge.KpiforgeError)
    assert getattr(kpiforge.errors, name) is error


def test_a_bad_period_is_a_kpiforge_error():
    from kpiforge._periods import parse_period

    with pytest.raises(kpiforge.KpiforgeError, match="is not a period"):
        parse_period("October")
