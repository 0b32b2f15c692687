"""The PostgreSQL test fixture itself: a real server, reachable only through the URL it yields."""

from __future__ import annotations

import pytest

sa = pytest.importorskip("sqlalchemy")

pytestmark = pytest.mark.slow


def test_server_answers(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT 1")).scalar_one() == 1
            assert connection.execute(sa.text("SELECT current_database()")).scalar_one() == "kpi"
            # the server must listen on loopback only
            listen = connection.execute(sa.text("SHOW listen_addresses")).scalar_one()
            assert listen == "127.0.0.1"
    finally:
        engine.dispose()


def test_url_is_local(postgres_url: str) -> None:
    url = sa.engine.make_url(postgres_url)
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "127.0.0.1"
    assert url.database == "kpi"
    assert url.port and url.port > 0
