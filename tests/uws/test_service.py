"""UwsService: creation, ownership, limits and UWS 1.1 WAIT, on the real database."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from vo_service.params import Params
from vo_service.uws.errors import (
    InvalidParameter,
    InvalidPhaseChange,
    JobLimitReached,
    JobNotFound,
    ResourceNotFound,
)
from vo_service.uws.events import PhaseEvents
from vo_service.uws.model import Job, Phase
from vo_service.uws.service import (
    ListFilters,
    UwsService,
    WaitRequest,
    parse_list_filters,
    parse_wait,
    wait_for_change,
)
from vo_service.uws.store import JobStore


def params(**values: str) -> Params:
    return Params(values.items())


def test_create_with_control_parameters(service: UwsService) -> None:
    job = service.create(
        "alice",
        Params([("lang", "ADQL"), ("query", "SELECT 1"), ("runid", "r1"),
                    ("phase", "run"), ("ExecutionDuration", "99999")]),
    )
    assert job.phase is Phase.QUEUED
    assert job.run_id == "r1"
    assert job.execution_duration == 3600  # clamped to the hard limit
    assert job.parameters.items() == (("LANG", "ADQL"), ("QUERY", "SELECT 1"))
    lifetime = job.destruction - job.creation_time
    assert timedelta(days=6, hours=23) < lifetime < timedelta(days=7, minutes=1)


def test_create_refuses_bad_control_values(service: UwsService) -> None:
    with pytest.raises(InvalidParameter, match="PHASE"):
        service.create("alice", params(PHASE="GO"))
    with pytest.raises(InvalidParameter, match="EXECUTIONDURATION"):
        service.create("alice", params(EXECUTIONDURATION="-5"))
    with pytest.raises(InvalidParameter, match="ISO 8601"):
        service.create("alice", params(DESTRUCTION="next tuesday"))
    assert service.store.count_unfinished("alice") == 0


def test_uploads_are_saved_in_the_job_directory(service: UwsService) -> None:
    job = service.create(None, Params([("UPLOAD", "t,param:t1")], {"t1": b"<VOTABLE/>"}))
    assert (service.job_dir(job.job_id) / "uploads" / "t1").read_bytes() == b"<VOTABLE/>"
    assert service.store.stored_bytes(None)[0] == len(b"<VOTABLE/>")
    with pytest.raises(InvalidParameter):
        service.create(None, Params([("UPLOAD", "t,param:x")], {"../evil": b"x"}))


def test_ownership(service: UwsService) -> None:
    private = service.create("alice", params(QUERY="x"))
    anonymous = service.create(None, params(QUERY="y"))
    assert service.get("alice", private.job_id).job_id == private.job_id
    for intruder in ("bob", None):
        with pytest.raises(JobNotFound):
            service.get(intruder, private.job_id)
        with pytest.raises(JobNotFound):
            service.delete(intruder, private.job_id)
        with pytest.raises(JobNotFound):
            service.run(intruder, private.job_id)
    # an anonymous job is reachable by its unguessable id
    assert service.get("bob", anonymous.job_id).owner_id is None
    assert [r.job_id for r in service.list("alice", ListFilters())] == [private.job_id]
    assert service.list(None, ListFilters()) == []
    assert service.list("bob", ListFilters()) == []


def test_caps(service: UwsService) -> None:
    for _ in range(3):
        service.create("alice", params())
    with pytest.raises(JobLimitReached) as info:
        service.create("alice", params())
    assert info.value.status == 429
    for _ in range(4):
        service.create(None, params())
    with pytest.raises(JobLimitReached):
        service.create(None, params())
    service.create("bob", params())


def test_phase_requests(service: UwsService) -> None:
    job = service.create("alice", params())
    assert service.set_phase("alice", job.job_id, "run").phase is Phase.QUEUED
    assert service.set_phase("alice", job.job_id, "RUN").phase is Phase.QUEUED
    with pytest.raises(InvalidParameter):
        service.set_phase("alice", job.job_id, "SUSPEND")
    assert service.set_phase("alice", job.job_id, "ABORT").phase is Phase.ABORTED
    assert service.abort("alice", job.job_id).phase is Phase.ABORTED
    with pytest.raises(InvalidPhaseChange):
        service.run("alice", job.job_id)


def test_limits_are_clamped(service: UwsService) -> None:
    job = service.create("alice", params())
    assert service.set_execution_duration("alice", job.job_id, "120").execution_duration == 120
    assert service.set_execution_duration("alice", job.job_id, "0").execution_duration == 3600
    far = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    clamped = service.set_destruction("alice", job.job_id, far)
    assert clamped.destruction == job.creation_time + timedelta(days=30)
    soon = datetime(2030, 1, 1, tzinfo=UTC)
    wanted = service.set_destruction("alice", job.job_id, "2030-01-01T00:00:00")
    assert wanted.destruction == min(soon, job.creation_time + timedelta(days=30))
    with pytest.raises(InvalidParameter):
        service.set_execution_duration("alice", job.job_id, "soon")


def test_error_and_results_children(service: UwsService, store: JobStore) -> None:
    job = service.create("alice", params())
    with pytest.raises(ResourceNotFound):
        service.error("alice", job.job_id)
    with pytest.raises(ResourceNotFound):
        service.result("alice", job.job_id, "result")


def test_list_filter_parsing() -> None:
    filters = parse_list_filters(
        Params([("phase", "queued"), ("PHASE", "EXECUTING"), ("after", "2026-01-01"),
                    ("last", "5")])
    )
    assert filters.phases == (Phase.QUEUED, Phase.EXECUTING)
    assert filters.after == datetime(2026, 1, 1, tzinfo=UTC)
    assert filters.last == 5
    for bad in ([("LAST", "0")], [("LAST", "x")], [("PHASE", "DONE")], [("AFTER", "yesterday")]):
        with pytest.raises(InvalidParameter):
            parse_list_filters(Params(bad))


def _wait(service: UwsService, events: PhaseEvents, job_id: str, wait: str,
          phase: str | None = None) -> Job:
    """UWS WAIT as the route runs it: on an event loop, re-reading the job."""
    items = [("WAIT", wait)] + ([("PHASE", phase)] if phase else [])
    request = parse_wait(Params(items), max_wait_s=10)

    async def read() -> Job:
        return service.get("alice", job_id)

    async def main() -> Job:
        job = await read()
        return job if request is None else await wait_for_change(job, request, events, read)

    return asyncio.run(main())


def test_wait_returns_when_the_phase_changes(service: UwsService,
                                             events: PhaseEvents) -> None:
    job = service.create("alice", params())
    service.run("alice", job.job_id)

    def change_later() -> None:
        time.sleep(0.5)
        service.store.claim_next(5)

    thread = threading.Thread(target=change_later)
    started = time.monotonic()
    thread.start()
    seen = _wait(service, events, job.job_id, "8", "QUEUED")
    elapsed = time.monotonic() - started
    thread.join()
    assert seen.phase is Phase.EXECUTING
    assert 0.4 < elapsed < 4.0  # well before the 8 s WAIT ends


def test_wait_times_out_and_skips_final_phases(service: UwsService,
                                               events: PhaseEvents) -> None:
    job = service.create("alice", params())
    started = time.monotonic()
    assert _wait(service, events, job.job_id, "1").phase is Phase.PENDING
    assert 0.9 < time.monotonic() - started < 2.5
    # a PHASE that is not the current one returns at once
    started = time.monotonic()
    _wait(service, events, job.job_id, "5", "EXECUTING")
    assert time.monotonic() - started < 0.5
    service.abort("alice", job.job_id)
    started = time.monotonic()
    assert _wait(service, events, job.job_id, "-1").phase is Phase.ABORTED
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "soon", "0x10"])
def test_wait_refuses_non_finite_values(value: str) -> None:
    with pytest.raises(InvalidParameter, match="WAIT"):
        parse_wait(Params([("WAIT", value)]), max_wait_s=10)
    assert parse_wait(Params([("WAIT", "1e9")]), max_wait_s=10) == WaitRequest(10.0)
    assert parse_wait(Params([("WAIT", "0")]), max_wait_s=10) is None


def test_delete_removes_files(service: UwsService) -> None:
    job = service.create("alice", Params([], {"t": b"x"}))
    assert service.job_dir(job.job_id).exists()
    service.delete("alice", job.job_id)
    assert not service.job_dir(job.job_id).exists()
    with pytest.raises(JobNotFound):
        service.get("alice", job.job_id)
