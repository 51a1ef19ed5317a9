"""Shared fixtures: a throwaway PostgreSQL + pgSphere cluster, migrated to head.

``LICK_ARCHIVE_TEST_DATABASE_URL`` points the suite at an existing server instead
(its role must be able to create databases and roles).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vo_service.database import setup
from vo_service.settings import Settings, load_settings

PROJECT = Path(__file__).resolve().parent.parent
#: The request id every VOTable error document carries (random per request).
_REQUEST_ID_INFO = re.compile(rb'<INFO name="request_id" value="[0-9a-f]{16}"/>')


def without_request_id(body: bytes | str) -> bytes:
    """An error document without its request id, so that the answers to two requests
    can be compared byte for byte (a hidden dataset must answer like a missing one)."""
    raw = body.encode() if isinstance(body, str) else body
    stripped, count = _REQUEST_ID_INFO.subn(b"", raw)
    assert count <= 1, "an error document names one request"
    return stripped


@dataclass
class TestDatabase:
    """One migrated database: DSNs for the owner and the read-only query role."""

    __test__ = False

    settings: Settings
    target: setup.DatabaseTarget
    _created: dict[str, TestDatabase] = field(default_factory=dict)

    @property
    def owner_dsn(self) -> str:
        return self.target.owner_dsn

    @property
    def query_dsn(self) -> str:
        return self.target.query_dsn

    @property
    def schedule_dsn(self) -> str | None:
        return self.target.schedule_dsn

    def new_database(self, name: str) -> TestDatabase:
        """An isolated database in the same cluster, migrated to head (cached by name)."""
        if name not in self._created:
            dbname = f"test_{name}"
            settings = self.settings
            if not settings.embedded:
                from sqlalchemy.engine import make_url

                url = make_url(settings.database.url)
                setup_admin = url.set(drivername="postgresql").render_as_string(
                    hide_password=False)
                import psycopg2

                conn = psycopg2.connect(setup_admin)
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
                    if cur.fetchone() is None:
                        cur.execute(f'CREATE DATABASE "{dbname}"')
                conn.close()
                settings = settings.replace(
                    database={"url": url.set(database=dbname).render_as_string(
                        hide_password=False)})
            target = setup.initialize(settings, dbname=dbname)
            self._created[name] = TestDatabase(settings, target)
        return self._created[name]


def _test_settings(data_dir: Path) -> Settings:
    settings = load_settings(PROJECT / "conf" / "lick-archive.toml", environ={})
    url = os.environ.get("LICK_ARCHIVE_TEST_DATABASE_URL", "")
    return settings.replace(service={"data_dir": data_dir}, database={"url": url})


@pytest.fixture(scope="session")
def database(request: pytest.FixtureRequest) -> Iterator[TestDatabase]:
    data_dir = Path(tempfile.mkdtemp(prefix="lick-test-"))
    data_dir.chmod(0o755)
    settings = _test_settings(data_dir)
    try:
        target = setup.initialize(settings)
        yield TestDatabase(settings, target)
    finally:
        if settings.embedded:
            setup.embedded_cluster(settings).destroy()
        import shutil

        if request.session.testsfailed:  # keep the servers' logs for the post-mortem
            kept = PROJECT / "build" / "test-logs"
            kept.mkdir(parents=True, exist_ok=True)
            for log in data_dir.glob("server-*.log"):
                shutil.copy(log, kept / log.name)
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class RunningServer:
    """A real `lick-archive serve` process on a loopback port, over the test database."""

    __test__ = False

    base_url: str
    database: TestDatabase
    log_path: Path

    @property
    def tap_url(self) -> str:
        return f"{self.base_url}/tap"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(database: TestDatabase, extra_env: dict[str, str] | None = None
                   ) -> Iterator[RunningServer]:
    """A real ``lick-archive serve`` on a free loopback port, stopped on exit."""
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update({
        "LICK_ARCHIVE_CONFIG": str(PROJECT / "conf" / "lick-archive.toml"),
        "LICK_ARCHIVE_SERVICE_DATA_DIR": str(database.settings.service.data_dir),
        "LICK_ARCHIVE_SERVICE_PORT": str(port),
        "LICK_ARCHIVE_SERVICE_BASE_URL": base_url,
        "LICK_ARCHIVE_DATABASE_URL": database.settings.database.url,
        # The test server fetches http UPLOADs from itself, on loopback.
        "LICK_ARCHIVE_TAP_UPLOAD_FETCH_PRIVATE": "true",
        # every test client comes from loopback: the per-address cap of unfinished
        # anonymous jobs would count the whole suite as one client
        "LICK_ARCHIVE_UWS_MAX_ACTIVE_JOBS_PER_ADDRESS": "10000",
        "LICK_ARCHIVE_UWS_MAX_ACTIVE_ANONYMOUS_JOBS": "10000",
        # the files of the demo archive (the ``archive`` fixture) are served from here
        "LICK_ARCHIVE_INGEST_ROOTS": str(Path(database.settings.service.data_dir)
                                         / "demo-archive"),
    })
    env.update(extra_env or {})
    log_path = Path(database.settings.service.data_dir) / f"server-{port}.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "vo_service.cli", "serve"], env=env, cwd=PROJECT,
        stdout=log_file, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base_url}/tap/availability", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    try:
        yield RunningServer(base_url, database, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def embedded_url(database: TestDatabase, dbname: str) -> str:
    """An owner URL of a database of the suite's embedded cluster (from any data dir)."""
    socket_dir = Path(database.settings.service.data_dir) / "postgres" / "socket"
    role = database.settings.database.owner_role
    return f"postgresql://{role}@/{dbname}?host={socket_dir}"


def database_env(suite: TestDatabase, own: TestDatabase) -> dict[str, str]:
    """The environment that points a server at ``own`` (from :meth:`new_database`)."""
    return {"LICK_ARCHIVE_DATABASE_URL":
            own.settings.database.url or embedded_url(suite, own.target.dbname)}


@pytest.fixture(scope="session")
def server(database: TestDatabase) -> Iterator[RunningServer]:
    with running_server(database) as running:
        yield running


@dataclass
class DemoArchive:
    """The demo archive written and ingested through the real CLI into the test database."""

    __test__ = False

    root: Path
    schedule: dict[str, Any]

    def password(self, obid: int) -> tuple[str, str]:
        """(login, password) of a demo observer."""
        for observer in self.schedule["observers"]:
            if observer["obid"] == obid:
                return observer["email"], observer["password"]
        raise KeyError(obid)


def cli_env(database: TestDatabase) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "LICK_ARCHIVE_CONFIG": str(PROJECT / "conf" / "lick-archive.toml"),
        "LICK_ARCHIVE_SERVICE_DATA_DIR": str(database.settings.service.data_dir),
        "LICK_ARCHIVE_DATABASE_URL": database.settings.database.url,
    })
    return env


def fetch(dsn: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One statement on a connection of its own, committed; its rows."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params or None)  # no parameters: '%' stays literal
            return list(cur.fetchall())
    finally:
        conn.close()


def run_cli(database: TestDatabase, *args: str) -> str:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "vo_service.cli", *args],
                            env=cli_env(database), cwd=PROJECT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"lick-archive {' '.join(args)} failed:\n" \
        f"{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="session")
def archive(database: TestDatabase) -> DemoArchive:
    import json

    root = Path(database.settings.service.data_dir) / "demo-archive"
    run_cli(database, "demo-data", str(root))
    run_cli(database, "ingest", str(root))
    schedule = json.loads((root / "schedule.json").read_text())
    return DemoArchive(root, schedule)
