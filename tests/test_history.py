"""KPI history: what `kpiforge run` stores, `kpiforge history` / `Project.history` read back.

A small project of ads by channel over three months (CTR and clicks); each test writes its own
copy, runs in-process through click's runner (fast), and reads the history file directly when
the claim is about what is stored.
"""

import json
import sqlite3
import textwrap
import threading
import uuid
from pathlib import Path
from types import MappingProxyType

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpiforge import Project, Record, RunResult, StateError, Status
from kpiforge._history import APPLICATION_ID, read_history, record_history
from kpiforge._plugins import load_plugins
from kpiforge.cli import build_cli

PLUGINS = load_plugins()
DEFINITIONS = """\
kpis:
  - {id: ctr, name: CTR, formula: clicks / impressions * 100, unit: percent, direction: higher_is_better,
     version: VERSION, inputs: {clicks: {unit: count}, impressions: {unit: count}},
     thresholds: {good: GOOD, warning: 2, critical: 1}}
  - {id: clicks, name: Clicks, formula: clicks, unit: count, direction: higher_is_better,
     inputs: {clicks: {unit: count}}}
"""


def write_project(root: Path, *, clicks=None, channels=("search", "display"), good=3,
                  version=1) -> Path:
    """Ads of Aug-Oct 2026; ``clicks[(month, channel)]`` per day overrides the default 20."""
    clicks = clicks or {}
    rows = ["date,channel,impressions,clicks"]
    for month in (8, 9, 10):
        for day in (1, 15):
            for channel in channels:
                rows.append(f"2026-{month:02d}-{day:02d},{channel},1000,"
                            f"{clicks.get((month, channel), 20)}")
    (root / "defs").mkdir(exist_ok=True)
    (root / "defs" / "kpis.yaml").write_text(
        DEFINITIONS.replace("GOOD", str(good)).replace("VERSION", str(version)))
    (root / "ads.csv").write_text("\n".join(rows) + "\n")
    (root / "kpiforge.yaml").write_text(textwrap.dedent("""
        definitions: [defs/]
        state: state/alerts.db
        sources:
          ads:
            type: csv
            path: ads.csv
            time: date
            dimensions: [channel]
            inputs:
              impressions: {agg: sum}
              clicks: {agg: sum}
    """))
    return root / "kpiforge.yaml"


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_cli(PLUGINS), list(args), obj=PLUGINS)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


def run(project: Path, *args: str) -> list[dict]:
    code, out, err = cli("run", "--project", str(project), "--format", "json", "-q", *args)
    assert code == 0, err
    return json.loads(out)["results"]


def history(project: Path, kpi: str, *args: str) -> list[dict]:
    code, out, err = cli("history", kpi, "--project", str(project), "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)["results"]


def stored_rows(project: Path) -> list[tuple]:
    with sqlite3.connect(project.parent / "state" / "history.db") as conn:
        return conn.execute("SELECT kpi, period, slice, value FROM history ORDER BY 1, 2, 3").fetchall()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path)


def test_history_reads_back_what_run_printed(project: Path) -> None:
    printed = run(project, "--grain", "month", "--last", "3", "--by", "channel")
    got = history(project, "ctr", "--by", "channel")
    expected = [r for r in printed if r["kpi"] == "ctr"]
    assert len(got) == len(expected) == 6
    key = lambda r: (r["period"], json.dumps(r["slice"]))  # noqa: E731
    for mine, theirs in zip(sorted(got, key=key), sorted(expected, key=key)):
        for field in ("kpi", "period", "slice", "value", "unit", "status", "reason", "reason_code"):
            assert mine[field] == theirs[field], field
        assert mine["grain"] == "month" and mine["version"] == 1 and mine["run_at"].endswith("Z")
    assert history(project, "ctr") == []  # the totals were not computed: none stored


def test_the_file_is_beside_the_alert_state_and_marked_as_history(project: Path) -> None:
    run(project, "--no-alerts")
    path = project.parent / "state" / "history.db"
    assert Project.load(project, plugins=PLUGINS).history_path == str(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert not (project.parent / "state" / "alerts.db").exists()  # no alert run: no state made


def test_a_rerun_replaces_the_period_one_row_per_kpi_period_slice(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    run(project, "--last", "3", "--by", "channel")
    before = stored_rows(project)
    write_project(tmp_path, clicks={(9, "search"): 50})
    run(project, "--period", "2026-09", "--by", "channel")
    after = stored_rows(project)
    assert len(after) == len(before) == 12  # 2 KPIs x 3 months x 2 channels
    assert {(k, p, s) for k, p, s, v in after} == {(k, p, s) for k, p, s, v in before}
    values = {(k, p, json.loads(s).get("channel")): v for k, p, s, v in after}
    assert values[("ctr", "2026-09", "search")] == pytest.approx(5.0)
    assert values[("ctr", "2026-10", "search")] == pytest.approx(2.0)  # other periods untouched


def test_a_slice_gone_from_the_data_is_gone_from_the_history(tmp_path: Path) -> None:
    project = write_project(tmp_path, channels=("search", "display", "email"))
    run(project, "--period", "2026-10", "--by", "channel")
    write_project(tmp_path, channels=("search", "display"))
    run(project, "--period", "2026-10", "--by", "channel")
    assert {r["slice"]["channel"] for r in history(project, "ctr", "--by", "channel")} \
        == {"search", "display"}


@pytest.mark.parametrize("flag", ["--dry-run", "--no-history"])
def test_dry_runs_and_no_history_store_nothing(project: Path, flag: str) -> None:
    run(project, flag)
    assert not (project.parent / "state" / "history.db").exists()
    assert history(project, "ctr") == []


def test_a_definition_change_is_marked_on_the_first_value_after_it(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    run(project, "--period", "2026-08")
    write_project(tmp_path, good=4, version=2)  # a threshold moved: statuses may not compare
    run(project, "--period", "2026-09")
    run(project, "--period", "2026-10")
    got = history(project, "ctr")
    assert [r["period"] for r in got] == ["2026-08", "2026-09", "2026-10"]
    assert [r["definition_changed"] for r in got] == [False, True, False]
    assert [r["version"] for r in got] == [1, 2, 2]
    assert got[0]["definition_hash"] != got[1]["definition_hash"] == got[2]["definition_hash"]
    # clicks' own definition did not change: nothing marked
    assert not any(r["definition_changed"] for r in history(project, "clicks"))
    code, out, _ = cli("history", "ctr", "--project", str(project))
    assert code == 0 and "2026-09 *" in out and "definition changed" in out


def test_last_and_by_in_python(project: Path) -> None:
    run(project, "--last", "3")
    run(project, "--last", "3", "--by", "channel")
    loaded = Project.load(project, plugins=PLUGINS)
    assert [r.period for r in loaded.history("ctr", last=2)] == ["2026-09", "2026-10"]
    by_channel = loaded.history("ctr", by="channel", last=1)
    assert sorted(r.slice["channel"] for r in by_channel) == ["display", "search"]
    assert all(r.period == "2026-10" and r.value == pytest.approx(2.0) for r in by_channel)


def test_csv_has_a_column_per_dimension(project: Path) -> None:
    run(project, "--period", "2026-10", "--by", "channel")
    code, out, err = cli("history", "ctr", "--project", str(project), "--by", "channel",
                         "--format", "csv")
    assert code == 0, err
    header, *lines = out.splitlines()
    assert header.split(",")[:4] == ["kpi", "grain", "period", "channel"]
    assert sorted(line.split(",")[3] for line in lines) == ["display", "search"]


def test_unknown_kpi_is_an_error_with_a_suggestion(project: Path) -> None:
    code, _, err = cli("history", "ctrr", "--project", str(project))
    assert code == 1 and "unknown KPI 'ctrr'" in err and "ctr" in err


def test_another_applications_database_is_refused_untouched(project: Path) -> None:
    path = project.parent / "state" / "history.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (x)")
    before = path.read_bytes()
    code, _, err = cli("run", "--project", str(project), "-q")
    assert code == 1 and "not kpiforge history" in err and "--no-history" in err
    assert path.read_bytes() == before


def test_two_writers_at_once_each_write_whole(tmp_path: Path) -> None:
    """Threads with their own connections, starting together on a file none has made yet
    (the creation race) and then writing over each other: every write lands whole."""
    project = Project.load(write_project(tmp_path), plugins=PLUGINS)
    results = [project.run(period=p, by="channel") for p in ("2026-08", "2026-09", "2026-10")]
    for attempt in range(3):
        path = str(tmp_path / f"history-{attempt}.db")
        errors: list[BaseException] = []
        start = threading.Barrier(len(results))

        def write(result, times=10):
            try:
                start.wait()
                for i in range(times):
                    record_history(path, project.engine, result, now=1_000_000 + i)
            except BaseException as exc:  # pragma: no cover - what the test is about
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(r,)) for r in results]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        got = read_history(path, "ctr", by="channel")
        assert sorted((r.period, r.slice["channel"]) for r in got) == [
            (p, c) for p in ("2026-08", "2026-09", "2026-10") for c in ("display", "search")]


def test_a_state_of_memory_keeps_no_history(tmp_path: Path) -> None:
    """``state: ':memory:'`` keeps nothing between runs (as for alerts): runs still work."""
    root = tmp_path
    write_project(root)
    text = (root / "kpiforge.yaml").read_text().replace("state/alerts.db", "':memory:'")
    (root / "kpiforge.yaml").write_text(text)
    run(root / "kpiforge.yaml")
    assert not (root / "state").exists() and history(root / "kpiforge.yaml", "ctr") == []


def test_a_damaged_file_is_a_located_error(project: Path) -> None:
    path = project.parent / "state" / "history.db"
    path.parent.mkdir()
    path.write_text("not a database at all")
    with pytest.raises(StateError, match="history.db: not an SQLite database"):
        Project.load(project, plugins=PLUGINS).history("ctr")


CHANNELS = ("search", "display", "email")
RUNS = st.lists(st.tuples(
    st.sets(st.sampled_from(("2026-08", "2026-09", "2026-10")), min_size=1),
    st.booleans(),                                   # split by channel, or the totals
    st.sets(st.sampled_from(CHANNELS), min_size=1),  # the channels the data has then
    st.integers(0, 1000)), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Project.load(write_project(tmp_path_factory.mktemp("engine")), plugins=PLUGINS).engine


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=RUNS)
def test_history_is_the_last_run_of_each_period_and_split(engine, tmp_path, runs) -> None:
    """Whatever the runs, what is stored for a (KPI, period, split) is what its last run gave:
    its slices, no fewer and no more, with their values."""
    path = str(tmp_path / f"history-{uuid.uuid4().hex}.db")
    expected: dict[tuple[str, str, bool], dict[str, float]] = {}
    for periods, split, channels, seed in runs:
        slices = [{"channel": c} for c in sorted(channels)] if split else [{}]
        records = tuple(Record("ctr", p, MappingProxyType(s), float(seed + i), "percent", None,
                               Status.OK) for p in sorted(periods) for i, s in enumerate(slices))
        record_history(path, engine, RunResult(records, "month", tuple(sorted(periods)),
                                               ("channel",) if split else ()))
        for p in periods:
            expected[("ctr", p, split)] = {s.get("channel", ""): float(seed + i)
                                           for i, s in enumerate(slices)}
    for split in (False, True):
        got: dict[tuple[str, str, bool], dict[str, float]] = {}
        for r in read_history(path, "ctr", by="channel" if split else ()):
            got.setdefault(("ctr", r.period, split), {})[r.slice.get("channel", "")] = r.value
        assert got == {k: v for k, v in expected.items() if k[2] == split}
