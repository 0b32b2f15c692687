"""docs/embedding.md runs as written: its ```python blocks, in order, in one namespace, in an
empty folder (the page writes its own project first)."""

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "embedding.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def blocks() -> list[str]:
    return BLOCK.findall(PAGE.read_text(encoding="utf-8"))


def test_the_page_has_code_for_every_part_of_the_api():
    code = "\n".join(blocks())
    for name in ("Project.load", "project.run(", ".to_records()", ".to_pandas()",
                 "Project.from_dict", "project.dispatch(", "Engine.load", "RunError"):
        assert name in code, name


def test_every_block_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "embedding_md"}
    for number, code in enumerate(blocks(), 1):
        try:
            exec(compile(code, f"{PAGE.name} block {number}", "exec"), namespace)
        except Exception as exc:  # name the block, not just the line inside it
            pytest.fail(f"block {number} of {PAGE.name} failed: {type(exc).__name__}: {exc}\n{code}")
    out = capsys.readouterr().out
    assert "signup_rate 2026-10 {'channel': 'search'} 8.0 good" in out
    assert "alerts: 1 notification; 1 delivery sent" in out
