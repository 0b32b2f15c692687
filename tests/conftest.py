from tests.conftest_postgres import postgres_url  # noqa: F401 - the fixture for the sql-source tests
