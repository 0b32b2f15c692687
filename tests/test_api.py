"""The public API is small, explicit and sorted; the plugin contract is typed and documented."""

import inspect
import typing
from pathlib import Path

import kpiforge
from kpiforge import hookspecs

TESTS = Path(__file__).parent


def test_all_is_sorted_and_importable():
    assert kpiforge.__all__ == sorted(kpiforge.__all__)
    for name in kpiforge.__all__:
        assert hasattr(kpiforge, name), name


def test_every_error_derives_from_the_base_error():
    for name in kpiforge.__all__:
        obj = getattr(kpiforge, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
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
