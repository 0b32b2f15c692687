"""The ``sql`` source's URLs: every dialect sqlglot renders is accepted, an unknown one is an
error at the project's ``url:`` line listing the supported ones, and a missing driver names
what to install."""

from __future__ import annotations

import builtins
import textwrap

import pytest

from kpiforge._plugins import load_plugins
from kpiforge._project import load_project
from kpiforge.errors import SourceError
from kpiforge.hookspecs import SourceContext
from kpiforge.sources import SourceRequest

pytest.importorskip("sqlalchemy")

SETTINGS = {"table": "orders", "time": "ts", "inputs": {"n": {"column": "*", "agg": "count"}}}


def make(url: str, tmp_path):
    return load_plugins().source_types["sql"].obj("shop", {**SETTINGS, "url": url},
                                                  SourceContext(project_dir=tmp_path))


@pytest.mark.parametrize("url, dialect", [
    ("mysql+pymysql://u:secret@127.0.0.1/db", "mysql"),
    ("mariadb+pymysql://u@127.0.0.1/db", "mariadb"),
    ("bigquery://project/dataset", "bigquery"),
    ("snowflake://u@account/db", "snowflake"),
    ("redshift+redshift_connector://u@h:5439/db", "redshift"),
    ("trino://u@h:8080/catalog", "trino"),
    ("awsathena+rest://@athena.eu-west-1.amazonaws.com/db", "athena"),
    ("databricks://token:x@h?http_path=p", "databricks"),
    ("clickhouse://u@h/db", "clickhouse"),
    ("mssql+pyodbc://u@dsn", "tsql"),
    ("oracle+oracledb://u@h/db", "oracle"),
    ("postgresql+psycopg://u@h/db", "postgresql"),
])
def test_every_rendered_dialect_is_accepted(url, dialect, tmp_path):
    assert make(url, tmp_path).dialect.name == dialect


def test_an_unknown_dialect_is_refused_at_the_url_line(tmp_path):
    (tmp_path / "kpiforge.yaml").write_text(textwrap.dedent("""\
        definitions: [kpiforge:standard]
        sources:
          shop:
            type: sql
            url: informix://u@h/db
            table: orders
            time: ts
            inputs:
              clicks: {column: "*", agg: count}
        """))
    project = load_project(tmp_path / "kpiforge.yaml")
    with pytest.raises(SourceError) as raised:
        project.run(kpis=["ctr"])
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'kpiforge.yaml'}:5: source 'shop': the informix "
                              "dialect is not supported (supported: "), message
    assert "mysql" in message and "bigquery" in message and "oracle" in message


def _without(monkeypatch, module: str) -> None:
    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name == module or name.startswith(module + "."):
            raise ImportError(f"No module named '{module}'", name=module)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)


def test_a_missing_mysql_driver_names_the_extra(monkeypatch, tmp_path):
    source = make("mysql+pymysql://u:secret@127.0.0.1:1/db", tmp_path)
    _without(monkeypatch, "pymysql")
    with pytest.raises(SourceError, match=r"driver for mysql\+pymysql is not installed: "
                                          r"pip install 'kpiforge\[mysql\]'") as raised:
        source.fetch(SourceRequest("month", "UTC", 0, (), (), source.inputs))
    assert raised.value.field == ("url",)
    assert "secret" not in str(raised.value)


def test_a_missing_sqlalchemy_dialect_names_its_package(tmp_path):
    pytest.importorskip("sqlalchemy")
    try:
        import sqlalchemy_bigquery  # noqa: F401
        pytest.skip("sqlalchemy-bigquery is installed here")
    except ImportError:
        pass
    source = make("bigquery://project/dataset", tmp_path)
    with pytest.raises(SourceError, match="driver for bigquery is not installed: "
                                          "pip install sqlalchemy-bigquery"):
        source.fetch(SourceRequest("month", "UTC", 0, (), (), source.inputs))
