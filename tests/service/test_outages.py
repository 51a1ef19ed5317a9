"""Faults lose nothing and leave nothing running: a database restart, a killed server,
a full or read-only results directory — each against a real server process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg2
import pytest
from lxml import etree

from tests.conftest import (
    PROJECT,
    RunningServer,
    TestDatabase,
    database_env,
    fetch,
    running_server,
)
from vo_service.database import setup
from vo_service.settings import load_settings

LOGIN, PASSWORD = "outage@lick.example", "a-long-password"
TOP = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore"}
# TAP_SCHEMA holds a few hundred rows in any database: joins of it are slow or big
SLOW = ("SELECT COUNT(*) AS n FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, "
        "TAP_SCHEMA.columns AS c, TAP_SCHEMA.columns AS d")
BIG = ("SELECT a.*, b.column_name AS b, c.column_name AS c FROM TAP_SCHEMA.columns AS a, "
       "TAP_SCHEMA.columns AS b, TAP_SCHEMA.columns AS c")
VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[TestDatabase]:
    """A database cluster of its own: these tests stop and start it."""
    data_dir = Path(tempfile.mkdtemp(prefix="lick-outage-"))
    data_dir.chmod(0o755)
    settings = load_settings(PROJECT / "conf" / "lick-archive.toml", environ={}).replace(
        service={"data_dir": data_dir}, database={"url": ""})
    if os.environ.get("LICK_ARCHIVE_TEST_DATABASE_URL"):
        pytest.skip("needs the embedded cluster to stop and start it")
    target = setup.initialize(settings)
    from auth.users import add_user

    conn = psycopg2.connect(target.owner_dsn)
    add_user(conn, LOGIN, PASSWORD)
    conn.close()
    try:
        yield TestDatabase(settings, target)
    finally:
        setup.embedded_cluster(settings).destroy()
        shutil.rmtree(data_dir, ignore_errors=True)


def _requests(server: RunningServer, job_url: str) -> dict[str, httpx.Response]:
    """One request of every database-backed kind."""
    base = server.base_url
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        return {
            "sync": client.get(f"{base}/tap/sync", params=TOP),
            "basic": client.get(f"{base}/tap/sync", params=TOP, auth=(LOGIN, PASSWORD)),
            "bearer": client.get(f"{base}/tap/sync", params=TOP,
                                 headers={"Authorization": "Bearer lick_" + "x" * 40}),
            "async create": client.post(f"{base}/tap/async",
                                        data={"LANG": "ADQL", "QUERY": TOP["QUERY"]}),
            "async read": client.get(job_url),
            "async list": client.get(f"{base}/tap/async", auth=(LOGIN, PASSWORD)),
            "availability": client.get(f"{base}/tap/availability"),
            "registry": client.get(f"{base}/oai", params={"verb": "Identify"}),
            "coverage": client.get(f"{base}/coverage", params={"FORMAT": "json"}),
            "readyz": client.get(f"{base}/readyz"),
            "healthz": client.get(f"{base}/healthz"),
            "login page": client.post(f"{base}/login", data={
                "email": LOGIN, "password": PASSWORD, "csrf_token": "t" * 30},
                headers={"Cookie": "lick_login_csrf=" + "t" * 30}),
        }


def test_database_restart_costs_clean_503s(own_cluster: TestDatabase) -> None:
    cluster = setup.embedded_cluster(own_cluster.settings)
    with running_server(own_cluster) as server:
        created = httpx.post(f"{server.tap_url}/async",
                             data={"LANG": "ADQL", "QUERY": TOP["QUERY"]})
        job_url = str(created.headers["location"])
        before = _requests(server, job_url)
        assert before["sync"].status_code == 200 and before["basic"].status_code == 200
        assert before["bearer"].status_code == 401
        cluster.stop()
        time.sleep(1.1)  # availability reuses a success for a second
        try:
            down = _requests(server, job_url)
        except Exception:
            print(server.log()[-5000:])
            raise
        finally:
            cluster.start()
        for name, reply in down.items():
            if name == "healthz":  # the process is alive: no restart wanted
                assert reply.status_code == 200 and reply.json()["status"] == "alive"
                continue
            if name == "readyz":  # not ready: send requests elsewhere
                assert reply.status_code == 503 and reply.json()["status"] == "not ready"
                assert int(reply.headers["retry-after"]) > 0
                continue
            if name == "availability":
                assert reply.status_code == 200
                assert b"<avl:available>false</avl:available>" in reply.content
                continue
            if name == "login page":  # browsers get a page, not a VOTable
                assert reply.status_code == 503 and "retry-after" in reply.headers
                assert reply.headers["content-type"].startswith("text/html")
                continue
            assert reply.status_code == 503, (name, reply.status_code, reply.text[:300])
            assert int(reply.headers["retry-after"]) > 0, name
            info = etree.fromstring(reply.content).find(f".//{VOT}INFO")
            assert info is not None and info.get("value") == "ERROR", name
            assert "TransientFault" in (info.text or ""), name
        after = _requests(server, job_url)  # the first requests after the restart
        for name, reply in after.items():
            expected = {"bearer": 401, "async create": 303, "login page": 303}.get(name, 200)
            assert reply.status_code == expected, (name, reply.status_code, reply.text[:300])
        assert b"<avl:available>true</avl:available>" in after["availability"].content
        assert after["readyz"].json()["status"] == "ready"
        assert "Traceback" not in server.log()


def _job_backends(database: TestDatabase) -> int:
    admin = database.target.admin_dsn or database.owner_dsn
    rows = fetch(admin, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND application_name = 'lick-archive jobs' "
                        "AND state = 'active'")
    return int(rows[0][0])


def _submit(server: RunningServer, query: str, **extra: str) -> str:
    reply = httpx.post(f"{server.tap_url}/async", follow_redirects=False,
                       data={"LANG": "ADQL", "QUERY": query, "PHASE": "RUN", **extra})
    assert reply.status_code == 303, reply.text
    return str(reply.headers["location"])


def _phase(job_url: str, wait: str = "-1") -> tuple[str, str]:
    doc = etree.fromstring(httpx.get(job_url, params={"WAIT": wait}, timeout=90).content)
    return doc.findtext(f"{UWS}phase") or "", doc.findtext(f"{UWS}errorSummary/{UWS}message") \
        or ""


def _wait_phase(job_url: str, phases: set[str], timeout: float = 60) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    phase, message = _phase(job_url, "0")
    while phase not in phases and time.monotonic() < deadline:
        phase, message = _phase(job_url, "2")
    return phase, message


@pytest.fixture(scope="module")
def isolated(database: TestDatabase) -> tuple[TestDatabase, dict[str, str]]:
    """A database of its own in the suite's cluster, and the environment that points a
    server at it: its job queue is not shared with the suite's other servers (whose
    runners would otherwise claim these jobs and write them elsewhere)."""
    own = database.new_database("outage")
    return own, database_env(database, own)


def test_killed_server_leaves_no_query_running(isolated) -> None:
    """SIGKILL the server while a job's query runs: its backend ends within 10 s (the
    query role checks its client), and the restarted server marks the job ERROR."""
    database, env = isolated
    with running_server(database, env) as server:
        job_url = _submit(server, SLOW)
        deadline = time.monotonic() + 20
        while _job_backends(database) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _job_backends(database) == 1, "the job's query did not start"
        process = _server_process(server)
        os.kill(process, signal.SIGKILL)
        killed = time.monotonic()
        while _job_backends(database) and time.monotonic() - killed < 10:
            time.sleep(0.2)
        assert _job_backends(database) == 0, "the dead server's query still runs"
    with running_server(database, env) as again:
        phase, message = _wait_phase(job_url.replace(server.base_url, again.base_url),
                                     {"ERROR", "COMPLETED"})
        assert phase == "ERROR" and "restarted" in message


def _server_process(server: RunningServer) -> int:
    """The pid of the server listening on the test server's port."""
    port = server.base_url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-Htlnp", f"sport = :{port}"], capture_output=True,
                         text=True, check=True).stdout
    return int(out.split("pid=")[1].split(",")[0])


@pytest.fixture
def small_jobs_dir(database: TestDatabase) -> Iterator[Path]:
    """The server's job directory on a 2 MiB tmpfs (mounting needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system for the results needs root")
    data_dir = Path(tempfile.mkdtemp(prefix="lick-disk-"))
    jobs = data_dir / "jobs"
    jobs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(jobs)], check=True)
    try:
        yield jobs
    finally:
        subprocess.run(["umount", "-l", str(jobs)], check=False)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_full_or_read_only_results_directory(isolated, small_jobs_dir: Path) -> None:
    database, env = isolated
    # the job directory moves; the database stays where the suite runs it
    env = {**env, "LICK_ARCHIVE_SERVICE_DATA_DIR": str(small_jobs_dir.parent)}
    with running_server(database, env) as server:
        # a result larger than the disk: a clean error, no server path, nothing left
        phase, message = _wait_phase(_submit(server, BIG, RESPONSEFORMAT="csv",
                                             MAXREC="100000"), {"ERROR", "COMPLETED"})
        assert phase == "ERROR", message
        assert "storage" in message and "/" not in message, message
        assert not list(small_jobs_dir.rglob("*.partial")) and _used(small_jobs_dir) < 4096
        # the next job succeeds
        small = _submit(server, TOP["QUERY"])
        assert _wait_phase(small, {"ERROR", "COMPLETED"})[0] == "COMPLETED"
        # a read-only directory: the job ends in ERROR, an upload is refused with 503
        subprocess.run(["mount", "-o", "remount,ro", str(small_jobs_dir)], check=True)
        try:
            phase, message = _wait_phase(_submit(server, TOP["QUERY"]), {"ERROR", "COMPLETED"})
            assert phase == "ERROR" and "/" not in message, message
            jobs_before = _count_jobs(database)
            refused = httpx.post(f"{server.tap_url}/async", data={
                "LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"},
                files={"t": ("t.xml", b"<VOTABLE/>", "text/xml")})
            assert refused.status_code == 503, refused.text
            assert str(small_jobs_dir) not in refused.text
            assert _count_jobs(database) == jobs_before  # no PENDING job left behind
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(small_jobs_dir)], check=True)
        again = _submit(server, TOP["QUERY"])
        assert _wait_phase(again, {"ERROR", "COMPLETED"})[0] == "COMPLETED"
        assert "Traceback" not in server.log()


def _used(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _count_jobs(database: TestDatabase) -> int:
    return int(fetch(database.owner_dsn, "SELECT count(*) FROM uws.jobs")[0][0])
