"""The service through pgbouncer in transaction pooling mode: a server connection serves
many clients' transactions in turn, so nothing may outlive a transaction — identity,
limits and upload tables are transaction-local, and what needs a session of its own
(LISTEN for job phases, the runner's advisory lock) goes to ``[database] direct_url``.
"""

from __future__ import annotations

import io
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg2
import pytest
from astropy.table import Table

from tests.conftest import (
    DemoArchive,
    RunningServer,
    TestDatabase,
    embedded_url,
    free_port,
    running_server,
)
from vo_service.database.cluster import SUPERUSER

COUNT = {"LANG": "ADQL", "RESPONSEFORMAT": "csv",
         "QUERY": "SELECT COUNT(*) AS n FROM ivoa.obscore"}


@pytest.fixture(scope="module")
def bouncer(database: TestDatabase, archive: DemoArchive) -> Iterator[int]:
    """pgbouncer on a loopback port in front of the suite's embedded cluster."""
    if shutil.which("pgbouncer") is None:
        pytest.fail("pgbouncer is missing: `make test` installs it "
                    "(scripts/install-system-packages)")
    db = database.settings.database
    socket_dir = Path(database.settings.service.data_dir) / "postgres" / "socket"
    home = Path(tempfile.mkdtemp(prefix="lick-pgbouncer-"))
    port = free_port()
    (home / "users.txt").write_text(f'"{db.owner_role}" ""\n"{db.query_role}" ""\n')
    # at most 3 server connections per role: far fewer than the service's pools, so
    # every connection serves many clients' transactions in turn
    (home / "pgbouncer.ini").write_text(
        f"[databases]\n{database.target.dbname} = host={socket_dir} "
        f"dbname={database.target.dbname}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {home}/users.txt\npool_mode = transaction\n"
        f"default_pool_size = 3\nmax_client_conn = 500\nadmin_users = {db.owner_role}\n"
        f"logfile = {home}/pgbouncer.log\n")
    command = ["pgbouncer", str(home / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        user = pwd.getpwnam(SUPERUSER)
        for path in (home, *home.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
        command = ["runuser", "-u", SUPERUSER, "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while True:
        try:
            psycopg2.connect(host="127.0.0.1", port=port, user=db.owner_role,
                             dbname=database.target.dbname).close()
            break
        except psycopg2.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not start: {process.stderr}") from None
            time.sleep(0.2)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def pooled(database: TestDatabase, bouncer: int) -> Iterator[RunningServer]:
    db = database.settings.database
    through = f"127.0.0.1:{bouncer}/{database.target.dbname}"
    env = {"LICK_ARCHIVE_DATABASE_URL": f"postgresql://{db.owner_role}@{through}",
           "LICK_ARCHIVE_DATABASE_QUERY_URL": f"postgresql://{db.query_role}@{through}",
           "LICK_ARCHIVE_DATABASE_DIRECT_URL": embedded_url(database,
                                                            database.target.dbname)}
    with running_server(database, env) as running:
        yield running


def _count(server: RunningServer, auth: tuple[str, str] | None) -> int:
    reply = httpx.get(f"{server.tap_url}/sync", params=COUNT, auth=auth, timeout=120)
    assert reply.status_code == 200, reply.text[:300]
    return int(reply.text.split("\r\n")[1])


def _admin(database: TestDatabase, port: int, command: str) -> list[dict[str, object]]:
    conn = psycopg2.connect(host="127.0.0.1", port=port, dbname="pgbouncer",
                            user=database.settings.database.owner_role)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(command)
            names = [c.name for c in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()


def test_identities_never_leak_between_pooled_transactions(
        server: RunningServer, pooled: RunningServer, archive: DemoArchive,
        database: TestDatabase, bouncer: int) -> None:
    """32 clients, anonymous and two observers interleaved, over 3 server connections
    per role: each sees exactly what the direct service shows it."""
    observers = [archive.password(o["obid"]) for o in archive.schedule["observers"][:2]]
    principals: list[tuple[str, str] | None] = [None, *observers]
    expected = {p: _count(server, p) for p in principals}
    assert len(set(expected.values())) > 1  # the principals see different rows
    work = [principals[i % len(principals)] for i in range(96)]
    with ThreadPoolExecutor(32) as pool:
        seen = list(pool.map(lambda p: (p, _count(pooled, p)), work))
    assert all(count == expected[p] for p, count in seen), seen
    (stats,) = [s for s in _admin(database, bouncer, "SHOW STATS")
                if s["database"] == database.target.dbname]
    assert int(str(stats["total_xact_count"])) >= len(work)
    pools = [p for p in _admin(database, bouncer, "SHOW POOLS")
             if p["database"] == database.target.dbname]
    assert pools and all(p["pool_mode"] == "transaction" for p in pools)


def test_uploads_and_async_jobs_through_the_pooler(pooled: RunningServer,
                                                   archive: DemoArchive) -> None:
    table = Table({"n": [1, 2, 3]})
    buffer = io.BytesIO()
    table.write(buffer, format="votable")
    reply = httpx.post(f"{pooled.tap_url}/sync", timeout=60, data={
        "LANG": "ADQL", "UPLOAD": "t,param:t", "RESPONSEFORMAT": "csv",
        "QUERY": "SELECT SUM(n) AS s FROM TAP_UPLOAD.t"},
        files={"t": ("t.xml", buffer.getvalue(), "application/x-votable+xml")})
    assert reply.status_code == 200, reply.text[:300]
    assert reply.text.split("\r\n")[1] == "6"

    auth = archive.password(archive.schedule["observers"][0]["obid"])
    created = httpx.post(f"{pooled.tap_url}/async", auth=auth, timeout=60,
                         data={**COUNT, "PHASE": "RUN"})
    assert created.status_code == 303, created.text[:300]
    job = created.headers["location"]
    # WAIT (on the job, UWS 1.1 §2.2.1.1) is woken by the LISTEN session on the
    # direct connection
    deadline = time.monotonic() + 60
    phase = ""
    while phase not in ("COMPLETED", "ERROR") and time.monotonic() < deadline:
        document = httpx.get(job, auth=auth, timeout=60, params={"WAIT": "10"}).text
        phase = document.split("phase>", 1)[1].split("<", 1)[0]
    assert phase == "COMPLETED"
    result = httpx.get(f"{job}/results/result", auth=auth, timeout=60,
                       follow_redirects=True)
    assert result.status_code == 200
    direct = _count(pooled, auth)
    assert result.text.split("\r\n")[1] == str(direct)
    assert httpx.delete(job, auth=auth, timeout=60).status_code in (200, 303)
