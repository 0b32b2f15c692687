"""The plugin guide documents every hook with its exact signature and docstring (datasette style).

``docs/plugins.md`` section "Hooks" must hold, for each ``@hookspec`` of ``kpiforge/hookspecs.py``,
a ``### <hook name>`` heading, its ``def`` line exactly as the code spells it, and its docstring;
for each register protocol, its ``register(...)`` signature and docstring. Change a hook and this
fails until the guide says the same.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from kpiforge import hookspecs

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


SOURCE = inspect.getsource(hookspecs)


def _tree() -> ast.Module:
    return ast.parse(SOURCE)


def _spelled(node: ast.FunctionDef) -> str:
    """The ``def`` of ``node`` as written (decorators, body and docstring left out), on one line."""
    lines = SOURCE.splitlines()
    first, last = node.lineno - 1, node.body[0].lineno - 1
    text = " ".join(line.strip() for line in lines[first:last])
    text = text[: text.rindex(":")]  # the colon ending the signature
    text = re.sub(r"\(\s+", "(", text)
    return re.sub(r",?\s*\)", ")", text)


def hook_signatures() -> dict[str, tuple[str, str]]:
    """hook name -> (its def line, its docstring), read from the source as written."""
    found = {}
    for node in _tree().body:
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Name) and d.id == "hookspec" for d in node.decorator_list):
            found[node.name] = (_spelled(node), ast.get_docstring(node) or "")
    return found


def register_signatures() -> dict[str, tuple[str, str]]:
    """protocol name -> (``register(...)`` line, docstring of its __call__)."""
    found = {}
    for node in _tree().body:
        if isinstance(node, ast.ClassDef) and node.name.endswith("Register"):
            call = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__call__")
            signature = _spelled(call).replace("def __call__(self, ", "register(")
            found[node.name] = (signature, ast.get_docstring(call) or "")
    return found


def section(title: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/plugins.md has no '## {title}' section"
    return match.group(1)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_every_hook_and_nothing_else_is_documented():
    documented = set(re.findall(r"^### (kpiforge_\w+)", section("Hooks"), re.M))
    assert documented == set(hook_signatures())
    assert set(hook_signatures()) == {n for n in hookspecs.__all__ if n.startswith("kpiforge_")}


@pytest.mark.parametrize("name", sorted(hook_signatures()))
def test_a_hook_is_documented_with_its_exact_signature_and_docstring(name):
    signature, docstring = hook_signatures()[name]
    hooks = section("Hooks")
    part = re.search(rf"^### {name}\n(.*?)(?=^### |\Z)", hooks, re.S | re.M).group(1)
    assert f"```python\n{signature}\n```" in part, f"docs/plugins.md: {name} must show\n{signature}"
    assert flat(docstring) in flat(part), f"docs/plugins.md: {name} must carry its docstring"


@pytest.mark.parametrize("name", sorted(register_signatures()))
def test_a_register_protocol_is_documented_with_its_signature_and_docstring(name):
    signature, docstring = register_signatures()[name]
    assert docstring, f"hookspecs.{name}.__call__ needs a docstring"
    hooks = section("Hooks")
    assert f"```python\n{signature}\n```" in hooks, f"docs/plugins.md must show {name} as\n{signature}"
    assert flat(docstring) in flat(hooks)


def test_settings_and_secrets_are_explained():
    text = section("Settings and secrets")
    for word in ("settings_schema", "secrets", "capabilities", "${VAR}", "$${", "SourceContext",
                 "SinkContext", *hookspecs.SECRET_KINDS, *hookspecs.SOURCE_CAPABILITIES):
        assert word in text, word
