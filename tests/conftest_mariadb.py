"""A real, throw-away MariaDB server for the tests of the ``sql`` source on MySQL's dialect.

The ``mariadb_url`` fixture (session scope) runs ``mariadb-install-db`` and ``mariadbd`` in a
temporary directory, listening only on 127.0.0.1 on a free port with its unix socket inside
that directory, so it never touches a system server and never accepts remote connections. The
time-zone tables are loaded (``mariadb-tzinfo-to-sql``): the source sets the session
``time_zone`` to the project's zone by name. It yields a SQLAlchemy URL (``mysql+pymysql``) to
a database ``kpi`` of a user with a password, and always stops the server and removes the
directory. CI installs the Debian package ``mariadb-server`` (``.ci/system-deps``); where it is
missing the tests skip and say so.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest

SKIP_NOT_INSTALLED = ("MariaDB server not installed: run make test (it installs the Debian "
                      "package mariadb-server)")
DATABASE = "kpi"
USER = "kpi"
_ZONES = ("UTC", "Europe/Paris", "Europe/Berlin", "America/New_York", "Asia/Tokyo")


def _tool(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(args: list[str], *, stdin: str | None = None, timeout: float = 120) -> str:
    # a clean environment: a MYSQL_HOST / MYSQL_PWD of the caller must not redirect our client
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/sbin"), "LC_ALL": "C", "LANG": "C"}
    result = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout,
                            env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}):\n"
                           f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result.stdout


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """SQLAlchemy URL of a database ``kpi`` on a private MariaDB server on 127.0.0.1."""
    server, install = _tool("mariadbd", "mysqld"), _tool("mariadb-install-db", "mysql_install_db")
    client, tzinfo = _tool("mariadb", "mysql"), _tool("mariadb-tzinfo-to-sql", "mysql_tzinfo_to_sql")
    if not (server and install and client and tzinfo):
        pytest.skip(SKIP_NOT_INSTALLED)
    pytest.importorskip("pymysql", reason="pymysql is needed to talk to MariaDB: pip install -e '.[dev]'")
    pytest.importorskip("sqlalchemy", reason="sqlalchemy is needed: pip install -e '.[dev]'")
    root = Path(tempfile.mkdtemp(prefix="kpiforge-mariadb-"))
    data, sock = root / "data", root / "mysqld.sock"
    user = ["--user=root"] if os.geteuid() == 0 else []
    process: subprocess.Popen[bytes] | None = None
    try:
        _run([install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
              "--skip-test-db", *user])
        port = _free_port()
        with open(root / "server.log", "wb") as log:
            process = subprocess.Popen(
                [server, "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--port={port}",
                 "--bind-address=127.0.0.1", "--skip-name-resolve", "--innodb-buffer-pool-size=32M",
                 "--skip-log-bin", f"--pid-file={root / 'mysqld.pid'}", *user],
                stdout=log, stderr=subprocess.STDOUT)
        base = [client, "--no-defaults", f"--socket={sock}", "-uroot"]
        for _ in range(120):
            if process.poll() is not None:
                raise RuntimeError("mariadbd exited:\n" + (root / "server.log").read_text(errors="replace")[-3000:])
            try:
                _run([*base, "-e", "SELECT 1"], timeout=10)
                break
            except RuntimeError:
                time.sleep(0.25)
        password = secrets.token_urlsafe(18)
        zones = "".join(_run([tzinfo, f"/usr/share/zoneinfo/{z}", z]) for z in _ZONES if z != "UTC")
        _run([*base, "mysql"], stdin=zones + _run([tzinfo, "/usr/share/zoneinfo/UTC", "UTC"]))
        _run([*base, "-e", f"CREATE DATABASE {DATABASE}; "
                           f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{password}'; "
                           f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'127.0.0.1';"])
        yield f"mysql+pymysql://{USER}:{quote(password, safe='')}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(root, ignore_errors=True)
