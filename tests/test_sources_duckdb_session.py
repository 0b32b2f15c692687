"""The DuckDB sessions of the built-in sources: what their connections are allowed to do."""

from kpiforge.sources import duckdb_session


def test_a_long_query_draws_no_progress_bar_on_stdout():
    # DuckDB prints its bar to stdout after ~2 s of a query: that would corrupt JSON output
    with duckdb_session() as session:
        result = session.query("SELECT current_setting('enable_progress_bar') AS bar", {})
    assert result["bar"].tolist() == [False]


def test_extensions_are_never_installed_or_loaded_behind_the_project():
    with duckdb_session() as session:
        result = session.query("SELECT current_setting('autoinstall_known_extensions') AS i, "
                               "current_setting('autoload_known_extensions') AS l", {})
    assert (result["i"].tolist(), result["l"].tolist()) == ([False], [False])
