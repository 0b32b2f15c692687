import os
import tempfile

from tests.conftest_postgres import postgres_url  # noqa: F401 - the fixture for the sql-source tests

# Tests (and the kpiforge processes they start, which inherit it) never write the user's own
# cache of schema verdicts (kpiforge._verdicts): one folder for the whole run, so the cached
# path is what most validations take, as it is for a user.
os.environ.setdefault("KPIFORGE_CACHE_DIR", tempfile.mkdtemp(prefix="kpiforge-test-cache-"))
