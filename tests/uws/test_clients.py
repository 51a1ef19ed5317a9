"""Real UWS clients (pyvo AsyncTAPJob, astroquery TapPlus) against /async over uvicorn."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import pyvo
import requests
import uvicorn

from tests.conftest import free_port
from tests.uws.app import uws_app
from vo_service.uws.errors import ExecutionFailed
from vo_service.uws.events import PhaseEvents
from vo_service.uws.model import Job, JobResult, Phase
from vo_service.uws.runner import JobRunner, Workspace
from vo_service.uws.service import UwsService

VOTABLE = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results"><INFO name="QUERY_STATUS" value="OK"/>
<TABLE><FIELD name="query" datatype="char" arraysize="*"/>
<FIELD name="n" datatype="int"/>
<DATA><TABLEDATA><TR><TD>{query}</TD><TD>{n}</TD></TR></TABLEDATA></DATA></TABLE>
</RESOURCE></VOTABLE>
"""


def votable_executor(job: Job, workspace: Workspace) -> list[JobResult]:
    """Stands in for the TAP executor: one VOTable row echoing the query."""
    query = job.parameters.get("QUERY") or ""
    if "fail" in query:
        raise ExecutionFailed("table fail does not exist: check the table name")
    result = workspace.result_file("result.vot")
    with result:
        result.write(VOTABLE.format(query=query.replace("<", "&lt;"), n=len(query)).encode())
    size = result.commit()
    return [JobResult("result", "application/x-votable+xml", "result.vot", size)]


@pytest.fixture
def tap_url(service: UwsService, events: PhaseEvents) -> Iterator[str]:
    port = free_port()
    app = uws_app(service, events, base_url=f"http://127.0.0.1:{port}")
    runner = JobRunner(service.store, votable_executor, service.jobs_dir, threads=2,
                       events=events)
    runner.start()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/tap"
    finally:
        server.should_exit = True
        thread.join(10)
        runner.stop()


def test_pyvo_run_async(tap_url: str) -> None:
    service = pyvo.dal.TAPService(tap_url)
    job = service.submit_job("SELECT n FROM t", runid="pyvo-test")
    assert job.phase == "PENDING"
    job.run()
    job.wait(timeout=20)
    assert job.phase == "COMPLETED"
    table = job.fetch_result().to_table()
    assert list(table["query"]) == ["SELECT n FROM t"]
    assert list(table["n"]) == [len("SELECT n FROM t")]
    assert job.query == "SELECT n FROM t"
    url = job.url
    job.delete()
    assert requests.get(url, timeout=5).status_code == 404


def test_pyvo_run_async_convenience_and_errors(tap_url: str) -> None:
    service = pyvo.dal.TAPService(tap_url)
    result = service.run_async("SELECT 1 FROM t")
    assert list(result.to_table()["query"]) == ["SELECT 1 FROM t"]
    with pytest.raises(pyvo.dal.DALQueryError, match="table fail does not exist"):
        service.run_async("SELECT * FROM fail")


def test_pyvo_abort(tap_url: str, service: UwsService) -> None:
    tap = pyvo.dal.TAPService(tap_url)
    job = tap.submit_job("SELECT 2 FROM t")
    job.abort()
    assert job.phase == Phase.ABORTED.value
    assert job.execution_duration.to_value("s") == 600


def test_astroquery_launch_job_async(tap_url: str) -> None:
    from astroquery.utils.tap.core import TapPlus

    tap = TapPlus(url=tap_url, verbose=False)
    job = tap.launch_job_async("SELECT 3 FROM t", verbose=False, background=False)
    table = job.get_results()
    assert list(table["query"]) == ["SELECT 3 FROM t"]
    assert job.get_phase() == "COMPLETED"
