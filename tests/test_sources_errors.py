"""Data errors in words (no Binder Error, no generated SQL), rows left out counted, DuckDB locked.

Each project is a real kpiforge.yaml over real files or databases, run through ``Project.run``
or ``kpiforge run`` exactly as a user would.
"""

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from kpiforge import Project, SourceError

ROWS = [("2026-10-01", "search", 100, 5, 10.0), ("2026-10-02", "social", 200, 4, 2.5)]
HEADER = ("date", "channel", "impressions", "clicks", "spend")


@pytest.fixture(autouse=True)
def in_project(tmp_path, monkeypatch):
    """Messages show the project path as given: run from its folder, like the CLI."""
    monkeypatch.chdir(tmp_path)


def write_data(root: Path, kind: str) -> str:
    """The data in ``kind``; returns the source settings (YAML lines) that read it."""
    records = [dict(zip(HEADER, row)) for row in ROWS]
    if kind == "csv":
        (root / "ads.csv").write_text("\n".join([",".join(HEADER)] + [",".join(map(str, r)) for r in ROWS]) + "\n")
        return "type: csv\n    path: ads.csv"
    if kind == "json":
        (root / "ads.json").write_text("\n".join(json.dumps(r) for r in records) + "\n")
        return "type: json\n    path: ads.json"
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), root / "ads.parquet")
        return "type: parquet\n    path: ads.parquet"
    if kind == "duckdb":
        con = duckdb.connect(str(root / "ads.duckdb"))
        con.execute("CREATE TABLE ads (date DATE, channel VARCHAR, impressions INT, clicks INT, spend DOUBLE)")
        con.executemany("INSERT INTO ads VALUES (?, ?, ?, ?, ?)", ROWS)
        con.close()
        return "type: duckdb\n    path: ads.duckdb\n    table: ads"
    con = sqlite3.connect(root / "ads.sqlite")
    con.execute("CREATE TABLE ads (date TEXT, channel TEXT, impressions INTEGER, clicks INTEGER, spend REAL)")
    con.executemany("INSERT INTO ads VALUES (?, ?, ?, ?, ?)", ROWS)
    con.commit()
    con.close()
    return "type: sqlite\n    path: ads.sqlite\n    table: ads"


def project(root: Path, source: str, inputs: str = "cost: {column: spnd, agg: sum}", extra: str = "") -> Path:
    path = root / "kpiforge.yaml"
    path.write_text(textwrap.dedent("""\
        timezone: Europe/Paris
        sources:
          ads:
            {source}
            time: date
            dimensions: [channel]{extra}
            inputs:
              impressions: {{agg: sum}}
              clicks: {{agg: sum}}
              {inputs}
        """).format(source=source, inputs=inputs, extra=extra))
    return Path(path.name) if Path.cwd() == root else path


def kpiforge(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kpiforge", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


# ----------------------------------------------------------------------------- item 13

WHERE = {"csv": "ads.csv", "json": "ads.json", "parquet": "ads.parquet",
         "duckdb": "table 'ads' of ads.duckdb", "sqlite": "table 'ads' of ads.sqlite"}


@pytest.mark.parametrize("kind", list(WHERE))
def test_a_misspelt_column_names_source_input_file_and_project_line(tmp_path, kind):
    path = project(tmp_path, write_data(tmp_path, kind))
    line = 1 + path.read_text().splitlines().index("      cost: {column: spnd, agg: sum}")
    with pytest.raises(SourceError) as info:
        Project.load(path).run(period="2026-10")
    message = str(info.value)
    assert message.startswith(f"kpiforge.yaml:{line}: source 'ads': input 'cost': column 'spnd' is not in "
                              f"{WHERE[kind]} (did you mean 'spend'?); its columns: date, channel, "), message
    for leak in ("Binder", "SELECT", "__t", "LINE 1", "no such column"):
        assert leak not in message
    assert "SELECT" in info.value.debug  # what --debug shows


@pytest.mark.parametrize("field, setting, expected", [
    ("time", "time: dat", "kpiforge.yaml:6: source 'ads': time column 'dat' is not in ads.csv (did you mean 'date'?)"),
    ("dimension", "dimensions: [chanel]", "kpiforge.yaml:7: source 'ads': dimension column 'chanel' is not in "
                                          "ads.csv (did you mean 'channel'?)"),
    ("filter", "", "kpiforge.yaml:11: source 'ads': input 'cost': filter on column 'stat' is not in ads.csv"),
])
def test_every_named_column_is_checked_before_the_query(tmp_path, field, setting, expected):
    path = project(tmp_path, write_data(tmp_path, "csv"), "cost: {column: spend, agg: sum, filter: {stat: paid}}"
                   if field == "filter" else "cost: {column: spend, agg: sum}")
    text = path.read_text()
    if field == "time":
        text = text.replace("time: date", setting)
    elif field == "dimension":
        text = text.replace("dimensions: [channel]", setting)
    path.write_text(text)
    with pytest.raises(SourceError, match="^" + expected.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        Project.load(path).run(period="2026-10", by="chanel" if field == "dimension" else ())


def test_several_column_errors_are_reported_at_once_each_with_its_line(tmp_path):
    path = project(tmp_path, write_data(tmp_path, "csv"), "cost: {column: spnd, agg: sum}")
    path.write_text(path.read_text().replace("clicks: {agg: sum}", "clicks: {column: clics, agg: sum}"))
    with pytest.raises(SourceError) as info:
        Project.load(path).run(period="2026-10")
    lines = str(info.value).splitlines()
    assert [line.split(": source")[0] for line in lines] == ["kpiforge.yaml:10", "kpiforge.yaml:11"]
    assert "'clics'" in lines[0] and "did you mean 'clicks'?" in lines[0] and "'spnd'" in lines[1]


def test_a_summed_text_column_says_which_column_holds_text_and_points_at_options(tmp_path):
    (tmp_path / "ads.csv").write_text("date,channel,impressions,clicks,spend\n"
                                      "2026-10-01,search,100,5,95.59€\n2026-10-02,social,200,4,3.00€\n")
    path = project(tmp_path, "type: csv\n    path: ads.csv", "cost: {column: spend, agg: sum}")
    with pytest.raises(SourceError) as info:
        Project.load(path).run(period="2026-10")
    assert str(info.value) == (
        "kpiforge.yaml:11: source 'ads': input 'cost' takes the sum of column 'spend' of ads.csv, which "
        "holds text (e.g. '95.59€'), not numbers; if the file writes decimal commas, set options: "
        "{decimal_separator: \",\"} on the source; currency signs or units in the values need an "
        "expression: that removes them")


def test_decimal_commas_read_with_the_option_the_error_points_at(tmp_path):
    (tmp_path / "ads.csv").write_text("date;channel;impressions;clicks;spend\n"
                                      "2026-10-01;search;100;5;95,59\n2026-10-02;social;200;4;4,41\n")
    path = project(tmp_path, "type: csv\n    path: ads.csv", "cost: {column: spend, agg: sum}",
                   extra="\n    options: {delim: ';'}")
    with pytest.raises(SourceError, match="holds text \\(e.g. '95,59'\\).*decimal_separator"):
        Project.load(path).run(period="2026-10")
    path.write_text(path.read_text().replace("{delim: ';'}", "{delim: ';', decimal_separator: ','}"))
    (cpc,) = Project.load(path).run(period="2026-10", kpis=["cpc"]).to_records()
    assert cpc["value"] == pytest.approx(100 / 9)


def test_a_value_the_csv_reader_cannot_convert_names_the_file_line_and_column(tmp_path):
    # past the rows the reader samples to guess types (20,480 by default)
    lines = [f"2026-10-{1 + i % 28:02d},search,100,5,1.5" for i in range(25000)] + ["2026-10-02,social,200,4,n/a"]
    (tmp_path / "ads.csv").write_text("date,channel,impressions,clicks,spend\n" + "\n".join(lines) + "\n")
    path = project(tmp_path, "type: csv\n    path: ads.csv", "cost: {column: spend, agg: sum}")
    with pytest.raises(SourceError) as info:
        Project.load(path).run(period="2026-10")
    message = str(info.value)
    assert "ads.csv, line 25002: column 'spend' holds 'n/a', which is not a DOUBLE" in message, message
    assert "sample_size: -1" in message and "Conversion Error" not in message
    assert "Original Line" in info.value.debug


def test_a_missing_table_lists_the_tables(tmp_path):
    path = project(tmp_path, write_data(tmp_path, "duckdb").replace("table: ads", "table: add"),
                   "cost: {column: spend, agg: sum}")
    with pytest.raises(SourceError, match="^kpiforge.yaml:6: source 'ads': table 'add' is not in ads.duckdb "
                                          r"\(did you mean 'ads'\?\); its tables: ads$"):
        Project.load(path).run(period="2026-10")


def test_cli_shows_the_sql_only_with_debug(tmp_path):
    project(tmp_path, write_data(tmp_path, "csv"))
    plain = kpiforge("run", "--period", "2026-10", cwd=tmp_path)
    assert plain.returncode == 1
    assert "column 'spnd' is not in ads.csv (did you mean 'spend'?)" in plain.stderr
    assert "SELECT" not in plain.stderr and "Traceback" not in plain.stderr
    debug = kpiforge("--debug", "run", "--period", "2026-10", cwd=tmp_path)
    assert debug.returncode == 1 and "SELECT" in debug.stderr and "did you mean 'spend'?" in debug.stderr


# ----------------------------------------------------------------------------- item 14

def test_rows_without_a_time_are_counted_and_reported(tmp_path):
    (tmp_path / "ads.csv").write_text("date,channel,impressions,clicks,spend\n2026-10-01,search,100,5,10\n"
                                      ",search,100,50,1\n2026-10-02,social,100,3,2\n")
    path = project(tmp_path, "type: csv\n    path: ads.csv", "cost: {column: spend, agg: sum}")
    result = Project.load(path).run(period="2026-10", kpis=["ctr"])
    assert [r.value for r in result] == [pytest.approx(4.0)]
    assert result.warnings == ("source 'ads': 1 row of ads.csv has no date and was left out",)
    assert result.to_dict()["warnings"] == list(result.warnings)

    table = kpiforge("run", "--period", "2026-10", "--kpi", "ctr", cwd=tmp_path)
    assert table.returncode == 0 and "warning: source 'ads': 1 row of ads.csv has no date" in table.stderr
    out = kpiforge("run", "--period", "2026-10", "--kpi", "ctr", "--format", "json", cwd=tmp_path)
    assert out.returncode == 0 and json.loads(out.stdout)["warnings"] == list(result.warnings)
    strict = kpiforge("run", "--period", "2026-10", "--kpi", "ctr", "--strict", cwd=tmp_path)
    assert strict.returncode == 1 and "--strict: 1 data warning" in strict.stderr


@pytest.mark.parametrize("kind, rows, expected", [
    ("csv", ["2026-10-01", "n/a", "", "2026-10-02"], "2 rows of ads.csv have an empty or unreadable date and were left out"),
    ("sqlite", ["2026-10-01", "garbage", None, "2026-10-02"], "2 rows of table 'ads' of ads.sqlite have an empty or "
                                                              "unreadable date and were left out"),
    ("records", ["2026-10-01", None, "2026-10-02"], "1 row of the records data has an empty or unreadable date and was left out"),
])
def test_empty_and_unreadable_times_are_left_out_with_a_count(tmp_path, kind, rows, expected):
    data = [{"date": d, "channel": "search", "impressions": 100, "clicks": 5} for d in rows]
    if kind == "csv":
        (tmp_path / "ads.csv").write_text("date,channel,impressions,clicks\n" + "".join(
            f"{r['date'] or ''},search,100,5\n" for r in data))
        source = "type: csv\n    path: ads.csv"
    elif kind == "sqlite":
        con = sqlite3.connect(tmp_path / "ads.sqlite")
        con.execute("CREATE TABLE ads (date TEXT, channel TEXT, impressions INTEGER, clicks INTEGER)")
        con.executemany("INSERT INTO ads VALUES (:date, :channel, :impressions, :clicks)", data)
        con.commit()
        con.close()
        source = "type: sqlite\n    path: ads.sqlite\n    table: ads"
    else:
        source = "type: records"
    path = project(tmp_path, source, "")
    result = Project.load(path).run(period="2026-10", kpis=["ctr"], data={"ads": data} if kind == "records" else None)
    assert [r.value for r in result] == [pytest.approx(5.0)]
    assert result.warnings == (f"source 'ads': {expected}",)


def test_a_source_with_every_time_present_has_no_warning(tmp_path):
    path = project(tmp_path, write_data(tmp_path, "parquet"), "cost: {column: spend, agg: sum}")
    assert Project.load(path).run(period="2026-10").warnings == ()


# ----------------------------------------------------------------------------- trust model

@pytest.mark.parametrize("kind", ["csv", "duckdb"])
@pytest.mark.parametrize("statement", ["INSTALL httpfs", "LOAD httpfs", "SET threads = 1",
                                       "SELECT 1 AS x; SET autoload_known_extensions = true",
                                       "ATTACH 'other.db'"])
def test_a_query_cannot_install_load_or_set(tmp_path, kind, statement):
    source = write_data(tmp_path, kind).replace("    table: ads", "")
    path = project(tmp_path, f"{source}\n    query: \"{statement}\"", "cost: {column: spend, agg: sum}")
    line = 1 + [i for i, text in enumerate(path.read_text().splitlines()) if "query:" in text][0]
    with pytest.raises(SourceError, match=f"^kpiforge.yaml:{line}: source 'ads': query: must be one SELECT "
                                          "statement.*cannot install or load extensions, change settings"):
        Project.load(path).run(period="2026-10")
    assert not (tmp_path / "other.db").exists()


def test_connections_do_not_autoload_extensions_and_lock_their_configuration(tmp_path):
    from kpiforge.sources import duckdb_session

    with duckdb_session(setup=["SET TimeZone = 'Europe/Paris'"]) as session:
        settings = dict(session.connection.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('autoinstall_known_extensions', "
            "'autoload_known_extensions', 'lock_configuration', 'TimeZone')").fetchall())
        assert settings == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false",
                            "lock_configuration": "true", "TimeZone": "Europe/Paris"}
        with pytest.raises(duckdb.Error, match="locked"):
            session.connection.execute("SET autoload_known_extensions = true")
    # a query reading a remote file would need httpfs: refused, in words
    source = write_data(tmp_path, "csv")
    path = project(tmp_path, f"{source}\n    query: \"SELECT * FROM read_csv('https://example.com/ads.csv')\"",
                   "cost: {column: spend, agg: sum}")
    with pytest.raises(SourceError, match="DuckDB extension httpfs, and kpiforge does not install or load"):
        Project.load(path).run(period="2026-10")
    # ...while a plain query over the files still works
    path = project(tmp_path, f"{source}\n    query: \"SELECT * FROM source\"", "cost: {column: spend, agg: sum}")
    assert {r.kpi: r.value for r in Project.load(path).run(period="2026-10", kpis=["ctr"])} == {
        "ctr": pytest.approx(9 / 300 * 100)}
