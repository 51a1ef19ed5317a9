"""JobStore against the real PostgreSQL: rows, transitions, locks, filters, caps."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from tests.uws.helpers import make_job
from vo_service.params import Params
from vo_service.uws.errors import (
    InvalidPhaseChange,
    JobLimitReached,
    JobNotFound,
    JobNotPending,
)
from vo_service.uws.model import ErrorSummary, ErrorType, JobResult, Phase
from vo_service.uws.store import JobCaps, JobStore


def test_create_and_get_round_trip(store: JobStore) -> None:
    job = make_job(params=[("lang", "ADQL"), ("UPLOAD", "a,param:a"), ("upload", "b,param:b")],
                   run_id="my run")
    created = store.create(job)
    again = store.get(job.job_id)
    assert again == created
    assert again.phase is Phase.PENDING
    assert again.run_id == "my run"
    assert again.owner_id == "alice"
    assert again.parameters.items() == (("LANG", "ADQL"), ("UPLOAD", "a,param:a"),
                                        ("UPLOAD", "b,param:b"))
    assert again.creation_time.tzinfo is not None
    assert again.creation_time.microsecond % 1000 == 0
    assert abs((again.creation_time - datetime.now(UTC)).total_seconds()) < 5


def test_unknown_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFound) as info:
        store.get("nope")
    assert info.value.status == 404


def test_phase_changes_set_times(store: JobStore) -> None:
    job = store.create(make_job())
    queued = store.set_phase(job.job_id, Phase.QUEUED)
    assert queued.start_time is None
    executing = store.claim_next(runner_key=7)
    assert executing is not None and executing.job_id == job.job_id
    assert executing.phase is Phase.EXECUTING and executing.start_time is not None
    assert executing.quote == executing.start_time + timedelta(seconds=600)
    done = store.complete(job.job_id, [JobResult("result", "text/csv", "result.csv", 12)])
    assert done is not None and done.phase is Phase.COMPLETED
    assert done.end_time is not None and done.end_time >= executing.start_time
    assert done.results == (JobResult("result", "text/csv", "result.csv", 12),)


def test_illegal_transitions_are_refused_and_nothing_changes(store: JobStore) -> None:
    job = store.create(make_job())
    with pytest.raises(InvalidPhaseChange):
        store.set_phase(job.job_id, Phase.COMPLETED)
    assert store.get(job.job_id).phase is Phase.PENDING
    store.set_phase(job.job_id, Phase.ABORTED)
    with pytest.raises(InvalidPhaseChange):
        store.set_phase(job.job_id, Phase.QUEUED)
    assert store.try_set_phase(job.job_id, Phase.ERROR) is None
    assert store.get(job.job_id).phase is Phase.ABORTED
    assert store.get(job.job_id).error is None


def test_the_database_refuses_unknown_phases(store: JobStore) -> None:
    job = store.create(make_job())
    conn = psycopg2.connect(store.dsn)
    try:
        with pytest.raises(psycopg2.errors.CheckViolation), conn, conn.cursor() as cursor:
            cursor.execute("UPDATE uws.jobs SET phase = 'RUNNING' WHERE job_id = %s",
                           (job.job_id,))
    finally:
        conn.close()


def test_expected_phase_precondition(store: JobStore) -> None:
    job = store.create(make_job())
    store.set_phase(job.job_id, Phase.QUEUED)
    with pytest.raises(InvalidPhaseChange):
        store.set_phase(job.job_id, Phase.ABORTED, expected=[Phase.PENDING])
    same = store.set_phase(job.job_id, Phase.QUEUED, idempotent=True)
    assert same.phase is Phase.QUEUED


def test_error_summary_is_stored(store: JobStore) -> None:
    job = store.create(make_job())
    failed = store.set_phase(job.job_id, Phase.ERROR,
                             error=ErrorSummary(ErrorType.FATAL, "bad ADQL at line 1"))
    assert failed.error == ErrorSummary(ErrorType.FATAL, "bad ADQL at line 1")
    assert failed.end_time is not None


def test_parameters_only_added_while_pending(store: JobStore) -> None:
    job = store.create(make_job(params=[("LANG", "ADQL")]))
    more = store.add_parameters(job.job_id, Params([("query", "SELECT 2")]))
    assert more.parameters.get("QUERY") == "SELECT 2"
    assert [n for n, _ in more.parameters] == ["LANG", "QUERY"]
    again = store.add_parameters(job.job_id, Params([("QUERY", "SELECT 3")]))
    assert again.parameters.get_all("query") == ["SELECT 3"]  # replaced, not appended
    store.set_phase(job.job_id, Phase.QUEUED)
    with pytest.raises(JobNotPending):
        store.add_parameters(job.job_id, Params([("MAXREC", "1")]))
    assert "MAXREC" not in store.get(job.job_id).parameters


def test_phase_change_waits_for_the_row_lock(store: JobStore) -> None:
    """A transaction holding the row FOR UPDATE blocks set_phase until it commits; the
    waiting change then sees the committed phase and is judged against it."""
    job = store.create(make_job())
    store.set_phase(job.job_id, Phase.QUEUED)
    holder = psycopg2.connect(store.dsn)
    cursor = holder.cursor()
    cursor.execute("SELECT phase FROM uws.jobs WHERE job_id = %s FOR UPDATE", (job.job_id,))
    outcome: list[object] = []

    def abort_it() -> None:
        try:
            outcome.append(store.set_phase(job.job_id, Phase.HELD))
        except InvalidPhaseChange as exc:
            outcome.append(exc)

    thread = threading.Thread(target=abort_it)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "set_phase did not wait for the row lock"
    cursor.execute("UPDATE uws.jobs SET phase = 'ABORTED' WHERE job_id = %s", (job.job_id,))
    holder.commit()
    holder.close()
    thread.join(5)
    assert len(outcome) == 1
    assert isinstance(outcome[0], InvalidPhaseChange)
    assert store.get(job.job_id).phase is Phase.ABORTED


def test_concurrent_claims_take_each_job_once(store: JobStore) -> None:
    jobs = [store.create(make_job(owner=f"user{i}")) for i in range(30)]
    for job in jobs:
        store.set_phase(job.job_id, Phase.QUEUED)

    def claim_all(key: int) -> list[str]:
        taken = []
        while (job := store.claim_next(key)) is not None:
            taken.append(job.job_id)
        return taken

    with ThreadPoolExecutor(6) as pool:
        batches = list(pool.map(claim_all, range(6)))
    claimed = [job_id for batch in batches for job_id in batch]
    assert sorted(claimed) == sorted(job.job_id for job in jobs)
    assert all(store.get(job.job_id).phase is Phase.EXECUTING for job in jobs)


def test_concurrent_abort_and_claim_have_one_winner(store: JobStore) -> None:
    """For each job, a claim and an abort race; each job ends in exactly one of the two
    outcomes and the loser saw a refused transition (or found nothing to claim)."""
    jobs = [store.create(make_job(owner=f"u{i}")) for i in range(20)]
    for job in jobs:
        store.set_phase(job.job_id, Phase.QUEUED)
    aborted: list[str] = []

    def abort(job_id: str) -> None:
        try:
            store.set_phase(job_id, Phase.ABORTED, expected=[Phase.QUEUED])
            aborted.append(job_id)
        except InvalidPhaseChange:
            pass

    claimed: list[str] = []

    def claimer() -> None:
        while (job := store.claim_next(1)) is not None:
            claimed.append(job.job_id)

    threads = [threading.Thread(target=abort, args=(j.job_id,)) for j in jobs]
    threads += [threading.Thread(target=claimer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(aborted + claimed) == sorted(j.job_id for j in jobs)
    assert not set(aborted) & set(claimed)
    for job_id in aborted:
        assert store.get(job_id).phase is Phase.ABORTED
    for job_id in claimed:
        assert store.get(job_id).phase is Phase.EXECUTING


def _set_creation(store: JobStore, job_id: str, when: datetime) -> None:
    conn = psycopg2.connect(store.dsn)
    with conn, conn.cursor() as cursor:
        cursor.execute("UPDATE uws.jobs SET creation_time = %s WHERE job_id = %s",
                       (when, job_id))
    conn.close()


def test_list_filters(store: JobStore) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    for day in range(6):
        job = store.create(make_job(owner="alice"))
        _set_creation(store, job.job_id, base + timedelta(days=day))
        ids.append(job.job_id)
    other = store.create(make_job(owner="bob"))
    store.create(make_job(owner=None))
    store.set_phase(ids[1], Phase.QUEUED)
    store.set_phase(ids[2], Phase.ABORTED)
    store.set_phase(ids[3], Phase.ABORTED)
    store.set_phase(ids[3], Phase.ARCHIVED)

    everything = store.list_jobs("alice")
    assert [r.job_id for r in everything] == [ids[5], ids[4], ids[2], ids[1], ids[0]]
    assert other.job_id not in {r.job_id for r in everything}

    archived = store.list_jobs("alice", phases=[Phase.ARCHIVED])
    assert [r.job_id for r in archived] == [ids[3]]
    both = store.list_jobs("alice", phases=[Phase.QUEUED, Phase.ABORTED])
    assert {r.job_id for r in both} == {ids[1], ids[2]}

    after = store.list_jobs("alice", after=base + timedelta(days=2))
    assert [r.job_id for r in after] == [ids[5], ids[4]]
    after_exact = store.list_jobs("alice", after=base + timedelta(days=1, hours=12))
    assert [r.job_id for r in after_exact] == [ids[5], ids[4], ids[2]]

    last = store.list_jobs("alice", last=2)
    assert [r.job_id for r in last] == [ids[5], ids[4]]
    combined = store.list_jobs("alice", phases=[Phase.PENDING], last=1)
    assert [r.job_id for r in combined] == [ids[5]]
    assert store.list_jobs("carol") == []


def test_caps_hold_under_concurrent_creation(store: JobStore) -> None:
    caps = JobCaps(per_owner=3, anonymous=2, per_address=100, bytes_per_owner=10**9,
                   bytes_total=10**9)

    def create(owner: str | None) -> bool:
        try:
            store.create(make_job(owner=owner), caps)
            return True
        except JobLimitReached:
            return False

    with ThreadPoolExecutor(8) as pool:
        alice = list(pool.map(create, ["alice"] * 10))
        anonymous = list(pool.map(create, [None] * 10))
    assert sum(alice) == 3
    assert sum(anonymous) == 2
    by_address = JobCaps(per_owner=3, anonymous=50, per_address=2, bytes_per_owner=10**9,
                         bytes_total=10**9)
    for _ in range(2):
        store.create(make_job(owner=None), by_address, creator_address="192.0.2.7")
    with pytest.raises(JobLimitReached, match="your address"):
        store.create(make_job(owner=None), by_address, creator_address="192.0.2.7")
    store.create(make_job(owner=None), by_address, creator_address="192.0.2.8")
    tiny = JobCaps(per_owner=30, anonymous=50, per_address=50, bytes_per_owner=100,
                   bytes_total=10**9)
    store.create(make_job(owner="bob"), tiny, upload_bytes=60)
    assert store.stored_bytes("bob")[0] == 60
    with pytest.raises(JobLimitReached, match="storage"):
        store.create(make_job(owner="bob"), tiny, upload_bytes=60)
    assert store.count_unfinished("alice") == 3
    # finished jobs do not count
    done = store.list_jobs("alice")[0]
    store.set_phase(done.job_id, Phase.ABORTED)
    assert create("alice") is True
    assert create("alice") is False


def test_delete_and_expiry(store: JobStore) -> None:
    keep = store.create(make_job())
    gone = store.create(make_job(destruction=datetime.now(UTC) - timedelta(seconds=1)))
    assert store.delete_expired(pending_lifetime_s=3600) == [gone.job_id]
    assert store.find(gone.job_id) is None
    store.set_phase(keep.job_id, Phase.QUEUED)
    never_run = store.create(make_job())
    time.sleep(1.1)
    assert store.delete_expired(pending_lifetime_s=1) == [never_run.job_id]
    assert store.get(keep.job_id).phase is Phase.QUEUED
    assert store.delete(keep.job_id) is True
    assert store.delete(keep.job_id) is False
