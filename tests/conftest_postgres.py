"""A real, throw-away PostgreSQL server for the tests of the ``sql`` source.

The ``postgres_url`` fixture (session scope) runs ``initdb`` + ``pg_ctl`` in a temporary
directory, listening only on 127.0.0.1 on a free port with its unix socket inside that
directory, so it never touches a system cluster and never accepts remote connections. It yields
a SQLAlchemy URL to a database ``kpi`` and always stops the server and removes the directory.

PostgreSQL refuses to run as root; under root the server runs as the ``postgres`` system user
that the Debian package creates, and the temporary directory is handed over to that user.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest

SKIP_NOT_INSTALLED = "PostgreSQL server not installed: run make test (it installs the Debian package postgresql)"
DATABASE = "kpi"
USER = "kpi"
_START_ATTEMPTS = 3  # a free port can be taken by someone else between probing and binding


def find_bindir() -> Path | None:
    """The newest Debian-style ``/usr/lib/postgresql/N/bin``, else wherever ``pg_ctl`` is on PATH."""
    candidates = []
    for pg_ctl in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        bindir = Path(pg_ctl).parent
        try:
            version = int(bindir.parent.name)
        except ValueError:
            version = 0
        candidates.append((version, bindir))
    if candidates:
        bindir = max(candidates)[1]
    else:
        found = shutil.which("pg_ctl")
        if not found:
            return None
        bindir = Path(found).resolve().parent
    if all((bindir / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
        return bindir
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class _Server:
    bindir: Path
    root: Path
    as_user: str | None  # run the server binaries as this user (when we are root)
    password: str
    port: int = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in args]
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        # A clean environment: a PGDATA/PGPORT of the caller must not redirect our server.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=self.root, check=False)

    def _check(self, what: str, result: subprocess.CompletedProcess[str]) -> None:
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stdout}\n"
                               f"{result.stderr}\n{log}")

    def init(self) -> None:
        self.socket_dir.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.as_user:
            shutil.chown(self.root, self.as_user, self.as_user)
            for path in (self.socket_dir, pwfile):
                shutil.chown(path, self.as_user, self.as_user)
        # Password auth over TCP so the URL is exercised as a real client would use it.
        self._check("initdb", self._run(
            self.bindir / "initdb", "-D", self.data, "-U", USER, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=trust", "--encoding=UTF8",
            "--locale=C", "--no-sync"))
        pwfile.unlink()

    def start(self) -> None:
        options = " ".join([
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            f"-c unix_socket_directories={self.socket_dir}",
            # durability is pointless for a throw-away test server; this makes it start faster
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
            "-c max_connections=20", "-c shared_buffers=16MB", "-c TimeZone=UTC",
        ])
        self._check("pg_ctl start", self._run(
            self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60",
            "-o", options, "start", timeout=90))

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30",
                      "stop", timeout=60)
            if (self.data / "postmaster.pid").exists():
                self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "stop",
                          timeout=30)

    def url(self, database: str) -> str:
        return (f"postgresql+psycopg://{USER}:{quote(self.password, safe='')}"
                f"@127.0.0.1:{self.port}/{database}")

    def create_database(self) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
        finally:
            engine.dispose()


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' system user to run the "
                    "PostgreSQL server as (initdb refuses root)")
    if not shutil.which("runuser"):
        pytest.skip("running as root without runuser: cannot start PostgreSQL as 'postgres'")
    return "postgres"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a database ``kpi`` on a private PostgreSQL server on 127.0.0.1."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(SKIP_NOT_INSTALLED)
    pytest.importorskip("psycopg", reason="psycopg is needed to talk to PostgreSQL: pip install -e '.[dev]'")
    pytest.importorskip("sqlalchemy", reason="sqlalchemy is needed: pip install -e '.[dev]'")
    as_user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="kpiforge-pg-"))
    server = _Server(bindir, root, as_user, secrets.token_urlsafe(18))
    try:
        server.init()
        for attempt in range(_START_ATTEMPTS):
            server.port = _free_port()
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == _START_ATTEMPTS - 1:
                    raise
                server.stop()
                time.sleep(0.5)
        server.create_database()
        yield server.url(DATABASE)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
