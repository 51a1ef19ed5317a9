"""Reading from a hot standby: a real streaming replica of the embedded cluster
(pg_basebackup), user queries served by it, writes on the primary, row-level security
holding there, and a standby that falls behind or goes away skipped."""

from __future__ import annotations

import io
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg2
import pytest
from astropy.table import Table

from tests.conftest import (
    PROJECT,
    RunningServer,
    TestDatabase,
    fetch,
    run_cli,
    running_server,
)
from vo_service.database import setup
from vo_service.database.cluster import SUPERUSER, find_postgres_bin
from vo_service.settings import load_settings

STAFF, STAFF_PASSWORD = "replica-staff@lick.example", "a-long-password"
NIGHT = "((now() AT TIME ZONE 'UTC') - interval '20 hours')::date"


@dataclass
class Standby:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket(self) -> Path:
        return self.root / "socket"

    def dsn(self, user: str) -> str:
        return f"host={self.socket} user={user} dbname=lick"

    def run(self, *args: str) -> None:
        prefix = ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, text=True)

    def pg_ctl(self, action: str) -> None:
        self.run(str(find_postgres_bin() / "pg_ctl"), "-D", str(self.data), "-l",
                 str(self.root / "log"), "-w", "-t", "60", action)


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """A cluster of its own holding the demo archive but one file (ingested later)."""
    if os.environ.get("LICK_ARCHIVE_TEST_DATABASE_URL"):
        pytest.skip("needs the embedded cluster to take a base backup of it")
    data_dir = Path(tempfile.mkdtemp(prefix="lick-primary-"))
    data_dir.chmod(0o755)
    settings = load_settings(PROJECT / "conf" / "lick-archive.toml", environ={}).replace(
        service={"data_dir": data_dir}, database={"url": ""})
    target = setup.initialize(settings)
    database = TestDatabase(settings, target)
    try:
        yield database
    finally:
        setup.embedded_cluster(settings).destroy()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def archive_root(primary: TestDatabase) -> tuple[Path, Path]:
    """The demo archive ingested on the primary, but for one public Nickel file (set
    aside: the test ingests it while the standby follows)."""
    root = Path(primary.settings.service.data_dir) / "demo-archive"
    run_cli(primary, "demo-data", str(root))
    later = sorted(root.glob("20[12]*/*/nickel/*.fits"))[0]
    aside = root.parent / later.name
    later.rename(aside)
    run_cli(primary, "ingest", str(root))
    from auth.users import add_user

    conn = psycopg2.connect(primary.owner_dsn)
    add_user(conn, STAFF, STAFF_PASSWORD, is_staff=True)
    conn.close()
    return later, aside


@pytest.fixture(scope="module")
def standby(primary: TestDatabase, archive_root: tuple[Path, Path]) -> Iterator[Standby]:
    cluster = setup.embedded_cluster(primary.settings)
    node = Standby(Path(primary.settings.service.data_dir) / "standby")
    node.root.mkdir()
    node.socket.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam(SUPERUSER)
        for path in (node.root, node.socket):
            os.chown(path, user.pw_uid, user.pw_gid)
    node.root.chmod(0o700)
    node.run(str(find_postgres_bin() / "pg_basebackup"), "-D", str(node.data), "-R", "-c", "fast",
             "-X", "stream", "-h", str(cluster.socket_dir), "-U", SUPERUSER)
    with (node.data / "postgresql.auto.conf").open("a") as conf:  # its own socket
        conf.write(f"\nunix_socket_directories = '{node.socket}'\n")
    node.pg_ctl("start")
    try:
        yield node
    finally:
        subprocess.run(["runuser", "-u", SUPERUSER, "--", str(find_postgres_bin() / "pg_ctl"),
                        "-D", str(node.data), "-m", "immediate", "stop"],
                       capture_output=True, check=False)


@pytest.fixture(scope="module")
def server(primary: TestDatabase, standby: Standby) -> Iterator[RunningServer]:
    owner = primary.settings.database.owner_role
    query = primary.settings.database.query_role
    socket = setup.embedded_cluster(primary.settings).socket_dir
    env = {"LICK_ARCHIVE_DATABASE_URL": f"postgresql://{owner}@/lick?host={socket}",
           "LICK_ARCHIVE_DATABASE_REPLICA_URLS": f"postgresql://{query}@/lick?host="
                                                 f"{standby.socket}",
           "LICK_ARCHIVE_DATABASE_REPLICA_CHECK_S": "1"}
    with running_server(primary, env) as running:
        yield running


def _dids(server: RunningServer, auth: tuple[str, str] | None = None) -> set[str]:
    reply = httpx.get(f"{server.tap_url}/sync", auth=auth, timeout=60, params={
        "LANG": "ADQL", "RESPONSEFORMAT": "csv", "MAXREC": "100000",
        "QUERY": "SELECT obs_publisher_did FROM ivoa.obscore"})
    assert reply.status_code == 200, reply.text[:300]
    return set(reply.text.split("\r\n")[1:]) - {""}


def _readers(dsn: str) -> int:
    return int(fetch(dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name "
                          "= 'lick-archive query'")[0][0])


def test_queries_read_the_standby_and_rls_holds_there(server: RunningServer,
                                                      primary: TestDatabase,
                                                      standby: Standby) -> None:
    public = {r[0] for r in fetch(primary.owner_dsn, "SELECT obs_publisher_did FROM "
                                  f"ivoa.obscore WHERE obs_release_date::date <= {NIGHT}")}
    everything = {r[0] for r in fetch(primary.owner_dsn,
                                      "SELECT obs_publisher_did FROM ivoa.obscore")}
    assert public < everything  # the demo archive has proprietary rows
    assert _dids(server) == public
    assert _dids(server, (STAFF, STAFF_PASSWORD)) == everything
    assert _readers(standby.dsn(SUPERUSER)) >= 1
    assert _readers(primary.target.admin_dsn or primary.owner_dsn) == 0


def _wait_for(predicate, seconds: float = 20) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


def test_a_file_ingested_on_the_primary_appears_once_replayed(
        server: RunningServer, primary: TestDatabase, standby: Standby,
        archive_root: tuple[Path, Path]) -> None:
    later, aside = archive_root
    aside.rename(later)
    root = Path(primary.settings.service.data_dir) / "demo-archive"
    run_cli(primary, "ingest", str(root))
    (did,) = fetch(primary.owner_dsn, "SELECT obs_publisher_did FROM lick.files "
                   "WHERE filename = %s AND path LIKE %s", (later.name, f"%nickel/{later.name}"))[0]
    assert _wait_for(lambda: did in _dids(server, (STAFF, STAFF_PASSWORD)))
    assert _readers(primary.target.admin_dsn or primary.owner_dsn) == 0


def test_uploads_run_on_the_primary_and_jobs_on_the_standby(server: RunningServer,
                                                            primary: TestDatabase) -> None:
    """A standby cannot create an upload's temporary table: those queries go to the
    primary, while an async job runs as usual."""
    public = sorted(_dids(server))
    upload = Table({"did": [*public[:5], "ivo://nowhere/none"]})
    buffer = io.BytesIO()
    upload.write(buffer, format="votable")
    reply = httpx.post(f"{server.tap_url}/sync", timeout=60, files={
        "mine": ("mine.xml", buffer.getvalue(), "application/x-votable+xml")}, data={
        "LANG": "ADQL", "UPLOAD": "mine,param:mine", "RESPONSEFORMAT": "csv",
        "QUERY": "SELECT m.did FROM TAP_UPLOAD.mine AS m JOIN ivoa.obscore AS o "
                 "ON o.obs_publisher_did = m.did"})
    assert reply.status_code == 200, reply.text[:300]
    assert set(reply.text.split("\r\n")[1:]) - {""} == set(public[:5])

    job = httpx.post(f"{server.tap_url}/async", timeout=60, follow_redirects=False, data={
        "LANG": "ADQL", "RESPONSEFORMAT": "csv", "PHASE": "RUN",
        "QUERY": "SELECT COUNT(*) AS n FROM ivoa.obscore"})
    assert job.status_code == 303, job.text[:300]
    location = job.headers["location"]
    phase = httpx.get(f"{location}/phase", params={"WAIT": "30"}, timeout=60).text
    assert _wait_for(lambda: httpx.get(f"{location}/phase", timeout=60).text == "COMPLETED")
    result = httpx.get(f"{location}/results/result", timeout=60, follow_redirects=True)
    assert result.status_code == 200, (phase, result.text[:300])
    assert result.text.split("\r\n")[1] == str(len(public))


def test_a_standby_behind_or_away_is_skipped(server: RunningServer, primary: TestDatabase,
                                             standby: Standby) -> None:
    admin = standby.dsn(SUPERUSER)
    marker = "replica-lag-test"

    def seen() -> bool:
        reply = httpx.get(f"{server.tap_url}/sync", timeout=60, params={
            "LANG": "ADQL", "RESPONSEFORMAT": "csv",
            "QUERY": f"SELECT obs_id FROM ivoa.obscore WHERE obs_id = '{marker}'"})
        assert reply.status_code == 200, reply.text[:300]
        return marker in reply.text

    fetch(admin, "SELECT pg_wal_replay_pause()::text")
    try:
        conn = psycopg2.connect(primary.owner_dsn)
        with conn, conn.cursor() as cur:  # a public row, written on the primary only
            cur.execute("UPDATE ivoa.obscore SET obs_id = %s WHERE obs_publisher_did = "
                        "(SELECT obs_publisher_did FROM ivoa.obscore WHERE data_rights = "
                        "'public' ORDER BY obs_publisher_did LIMIT 1) RETURNING obs_id",
                        (marker,))
        conn.close()
        # the paused standby falls behind: within a few checks the rows come from the
        # primary, which has the change
        assert _wait_for(seen), "a lagging standby kept answering"
    finally:
        fetch(admin, "SELECT pg_wal_replay_resume()::text")
    # caught up: reads go back to the standby (a query's checkout replaces the
    # pooled connections to the primary)
    assert _wait_for(lambda: seen() and _readers(admin) >= 1, 30)
    standby.pg_ctl("stop")
    try:  # the standby goes away: every query is answered, from the primary
        for _ in range(10):
            assert seen()
    finally:
        standby.pg_ctl("start")
