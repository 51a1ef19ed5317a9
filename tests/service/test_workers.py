"""``lick-archive serve --workers N``: several processes share the port and the database."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.conftest import running_server
from tests.service.test_fairness import _cone_clients


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return found


def test_two_workers_serve_one_archive(database, archive) -> None:
    with running_server(database, {"LICK_ARCHIVE_SERVICE_WORKERS": "2"}) as server:
        import subprocess

        port = server.base_url.rsplit(":", 1)[1]
        listener = subprocess.run(["ss", "-Htlnp", f"sport = :{port}"], capture_output=True,
                                  text=True, check=True).stdout
        holders = {int(part.split(",")[0]) for part in listener.split("pid=")[1:]}
        # the supervisor binds the socket; its two worker processes share it
        supervisors = [p for p in holders if len(_children(p) & holders) == 2]
        assert len(supervisors) == 1, holders
        workers = _children(supervisors[0]) & holders
        # a crowd is served by both, without an error
        done, errors = asyncio.run(_cone_clients(server.base_url, 16, 5.0))
        assert errors == [] and done > 16
        # a job made through one worker is seen, waited on and deleted through any
        created = httpx.post(f"{server.tap_url}/async", data={
            "LANG": "ADQL", "QUERY": "SELECT TOP 3 obs_id FROM ivoa.obscore", "PHASE": "RUN"})
        job = created.headers["location"]
        deadline = time.monotonic() + 30
        phase = ""
        while phase != "COMPLETED" and time.monotonic() < deadline:
            phase = httpx.get(f"{job}/phase").text
            time.sleep(0.1)
        assert phase == "COMPLETED"
        for _ in range(6):  # new connections: the kernel spreads them over the workers
            assert httpx.get(f"{job}/results/result").status_code == 200
        assert httpx.delete(job).status_code == 303
    deadline = time.monotonic() + 15  # stopping the server stops its workers
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
