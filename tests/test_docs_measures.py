"""docs/measures.md runs as written: its ```python blocks, in order, in one namespace; its
project example loads and binds."""

import re
import textwrap
from pathlib import Path

import pytest

from kpiforge import Project, ProjectError

PAGE = Path(__file__).resolve().parents[1] / "docs" / "measures.md"
TEXT = PAGE.read_text(encoding="utf-8")


def test_every_python_block_runs() -> None:
    namespace: dict = {"__name__": "measures_md"}
    blocks = re.findall(r"^```python\n(.*?)^```$", TEXT, re.S | re.M)
    assert blocks
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{PAGE.name} block {number}", "exec"), namespace)


def test_the_project_example_binds(tmp_path: Path) -> None:
    project_yaml = re.findall(r"^```yaml\n(parameters:.*?)^```$", TEXT, re.S | re.M)[0]
    (tmp_path / "answers.csv").write_text(
        "answered_on,likelihood,satisfaction,survey\n"
        "2026-09-01,9,10,csat\n2026-09-01,3,8,csat\n2026-09-02,7,,nps\n")
    (tmp_path / "kpiforge.yaml").write_text(project_yaml)
    result = Project.load(tmp_path / "kpiforge.yaml").run(kpis=["nps", "csat"], period="2026-09")
    values = {r.kpi: r.value for r in result.records}
    assert values["nps"] == pytest.approx((1 - 1) / 3 * 100)
    assert values["csat"] == pytest.approx(50.0)  # 10 of 10 is satisfied, 8 of 10 is not


def test_the_error_shown_is_the_one_kpiforge_prints(tmp_path: Path) -> None:
    shown = re.search(r"^(kpiforge\.yaml:\d+:\d+: error\[measure-conflict\].*)$", TEXT, re.M)[1]
    (tmp_path / "a.csv").write_text("answered_on,likelihood\n2026-09-01,9\n")
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""
        sources:
          survey:
            type: csv
            path: a.csv
            time: answered_on
            fields: {score: likelihood}
            inputs:
              promoters: {agg: sum, expression: "CASE WHEN likelihood >= 8 THEN 1 ELSE 0 END"}
              detractors: {}
              nps_responses: {}
    """).lstrip())
    with pytest.raises(ProjectError) as info:
        Project.load(tmp_path / "kpiforge.yaml").engine  # noqa: B018
    assert str(info.value).split(": error", 1)[1] == shown.split(": error", 1)[1]
