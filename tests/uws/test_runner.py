"""The runner with real executors writing real files, against the real database."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from tests.uws.helpers import make_job
from vo_service.uws.errors import ExecutionFailed
from vo_service.uws.events import PhaseEvents
from vo_service.uws.model import ErrorType, Job, JobResult, Phase
from vo_service.uws.runner import RESTART_MESSAGE, JobRunner, Workspace, register_cancel
from vo_service.uws.store import LOCK_CLASS_RUNNER, JobStore


def csv_executor(job: Job, workspace: Workspace) -> list[JobResult]:
    """Writes the QUERY parameter reversed as a CSV file, like a query result."""
    query = job.parameters.get("QUERY") or ""
    result = workspace.result_file("result.csv")
    with result:
        result.write(f"q\n{query[::-1]}\n".encode())
    size = result.commit()
    return [JobResult("result", "text/csv", "result.csv", size)]


def wait_for_phase(store: JobStore, job_id: str, phases: set[Phase], timeout: float = 10) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.get(job_id)
        if job.phase in phases:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stayed {store.get(job_id).phase}")


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Path:
    return tmp_path / "jobs"


def test_run_one_completes_with_a_real_file(store: JobStore, jobs_dir: Path) -> None:
    runner = JobRunner(store, csv_executor, jobs_dir)
    job = store.create(make_job(params=[("QUERY", "SELECT 42")]))
    assert runner.run_one() is None
    store.set_phase(job.job_id, Phase.QUEUED)
    done = runner.run_one()
    assert done is not None and done.phase is Phase.COMPLETED
    path = jobs_dir / job.job_id / "result.csv"
    assert path.read_text() == "q\n24 TCELES\n"
    assert done.results == (JobResult("result", "text/csv", "result.csv", path.stat().st_size),)


def test_failures_end_in_error_with_their_message(store: JobStore, jobs_dir: Path) -> None:
    def failing(job: Job, workspace: Workspace) -> list[JobResult]:
        if job.parameters.get("KIND") == "usage":
            raise ExecutionFailed("column foo not found (line 1, column 8)")
        if job.parameters.get("KIND") == "transient":
            raise ExecutionFailed("database busy", transient=True)
        raise ZeroDivisionError("division by zero")

    runner = JobRunner(store, failing, jobs_dir)
    outcomes = {}
    for kind in ("usage", "transient", "crash"):
        job = store.create(make_job(owner=kind, params=[("KIND", kind)]))
        store.set_phase(job.job_id, Phase.QUEUED)
        outcomes[kind] = runner.run_one()
    assert outcomes["usage"] is not None and outcomes["usage"].phase is Phase.ERROR
    assert outcomes["usage"].error is not None
    assert outcomes["usage"].error.message == "column foo not found (line 1, column 8)"
    assert outcomes["usage"].error.type is ErrorType.FATAL
    assert outcomes["transient"] is not None and outcomes["transient"].error is not None
    assert outcomes["transient"].error.type is ErrorType.TRANSIENT
    assert outcomes["crash"] is not None and outcomes["crash"].error is not None
    # an unexpected failure is logged; the client learns nothing of our internals
    assert outcomes["crash"].error.message == \
        "the job failed on an internal error; it has been logged"


class SlowExecutor:
    """Sleeps until cancelled (or 30 s), recording that its cancel callback ran."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.started = threading.Event()

    def __call__(self, job: Job, workspace: Workspace) -> list[JobResult]:
        register_cancel(self.cancelled.set)
        self.started.set()
        (workspace.directory / "partial.csv").write_text("partial")
        if self.cancelled.wait(30):
            raise RuntimeError("canceling statement due to user request")
        return [JobResult("result", "text/csv", "partial.csv")]


@pytest.fixture
def running(store: JobStore, jobs_dir: Path, events: PhaseEvents) -> Iterator[
    tuple[JobRunner, SlowExecutor]
]:
    executor = SlowExecutor()
    runner = JobRunner(store, executor, jobs_dir, threads=2, events=events,
                       poll_interval=5.0, monitor_interval=0.1)
    runner.start()
    yield runner, executor
    runner.stop()


def test_threads_pick_up_queued_jobs_promptly(running, store: JobStore) -> None:
    runner, executor = running
    job = store.create(make_job())
    started = time.monotonic()
    store.set_phase(job.job_id, Phase.QUEUED)
    assert executor.started.wait(5)
    # poll_interval is 5 s: only the NOTIFY can have woken the worker this fast
    assert time.monotonic() - started < 2
    assert store.get(job.job_id).phase is Phase.EXECUTING
    assert runner.running_jobs() == [job.job_id]


def test_abort_cancels_the_running_work(running, store: JobStore, jobs_dir: Path) -> None:
    runner, executor = running
    job = store.create(make_job())
    store.set_phase(job.job_id, Phase.QUEUED)
    assert executor.started.wait(5)
    store.set_phase(job.job_id, Phase.ABORTED)
    assert executor.cancelled.wait(5), "the cancel callback was not called"
    time.sleep(0.3)
    final = store.get(job.job_id)
    assert final.phase is Phase.ABORTED
    assert final.error is None and final.results == ()
    assert runner.running_jobs() == []


def test_execution_duration_is_enforced(running, store: JobStore) -> None:
    _, executor = running
    job = store.create(make_job(duration=1))
    store.set_phase(job.job_id, Phase.QUEUED)
    assert executor.started.wait(5)
    assert executor.cancelled.wait(5)
    final = wait_for_phase(store, job.job_id, {Phase.ERROR})
    assert final.error is not None
    assert "execution duration of 1 s" in final.error.message
    assert final.start_time is not None and final.end_time is not None
    assert 0.9 <= (final.end_time - final.start_time).total_seconds() < 4


def test_deleting_a_running_job_stops_it(running, store: JobStore) -> None:
    runner, executor = running
    job = store.create(make_job())
    store.set_phase(job.job_id, Phase.QUEUED)
    assert executor.started.wait(5)
    store.delete(job.job_id)
    assert executor.cancelled.wait(5)
    time.sleep(0.3)
    assert store.find(job.job_id) is None
    assert runner.running_jobs() == []


def test_stop_fails_running_jobs_with_a_reason(store: JobStore, jobs_dir: Path) -> None:
    executor = SlowExecutor()
    runner = JobRunner(store, executor, jobs_dir, threads=1, poll_interval=0.1)
    runner.start()
    job = store.create(make_job())
    store.set_phase(job.job_id, Phase.QUEUED)
    assert executor.started.wait(5)
    runner.stop()
    final = store.get(job.job_id)
    assert final.phase is Phase.ERROR
    assert final.error is not None and "shut down" in final.error.message


def test_restart_recovery(store: JobStore, jobs_dir: Path) -> None:
    """A job EXECUTING under a dead runner ends in ERROR; one under a live runner (its
    advisory lock held by another session) is left alone until that session ends."""
    dead = store.create(make_job(owner="a"))
    alive = store.create(make_job(owner="b"))
    for job, key in ((dead, 1111), (alive, 2222)):
        store.set_phase(job.job_id, Phase.QUEUED)
        claimed = store.claim_next(key)
        assert claimed is not None
        conn = psycopg2.connect(store.dsn)
        with conn, conn.cursor() as cursor:  # make sure which job got which key
            cursor.execute("UPDATE uws.jobs SET runner_key = %s WHERE job_id = %s",
                           (key, job.job_id))
        conn.close()
    other_server = psycopg2.connect(store.dsn)
    other_server.autocommit = True
    other_server.cursor().execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS_RUNNER, 2222))

    runner = JobRunner(store, csv_executor, jobs_dir, threads=1)
    runner.start()
    try:
        failed = store.get(dead.job_id)
        assert failed.phase is Phase.ERROR
        assert failed.error is not None and failed.error.message == RESTART_MESSAGE
        assert failed.error.type is ErrorType.TRANSIENT
        assert store.get(alive.job_id).phase is Phase.EXECUTING
        other_server.close()  # the other server dies; PostgreSQL frees its lock soon after
        deadline = time.monotonic() + 10
        recovered: list[str] = []
        while not recovered and time.monotonic() < deadline:
            recovered = runner.recover()
            time.sleep(0.05)
        assert recovered == [alive.job_id]
        assert store.get(alive.job_id).phase is Phase.ERROR
    finally:
        runner.stop()


def test_destruction_sweep_removes_rows_and_files(store: JobStore, jobs_dir: Path) -> None:
    runner = JobRunner(store, csv_executor, jobs_dir, orphan_dir_age=0.0)
    expired = store.create(make_job(destruction=datetime.now(UTC) + timedelta(seconds=1)))
    kept = store.create(make_job())
    for job in (expired, kept):
        store.set_phase(job.job_id, Phase.QUEUED)
        assert runner.run_one() is not None
    assert (jobs_dir / expired.job_id / "result.csv").is_file()
    orphan = jobs_dir / "left-by-a-crash"
    orphan.mkdir()
    (orphan / "result.csv").write_text("x")
    time.sleep(1.1)
    assert runner.sweep() == [expired.job_id]
    assert not (jobs_dir / expired.job_id).exists()
    assert not orphan.exists()
    assert store.find(expired.job_id) is None
    assert (jobs_dir / kept.job_id / "result.csv").is_file()
    assert store.get(kept.job_id).phase is Phase.COMPLETED


def test_jobs_running_nowhere_are_failed(store: JobStore, jobs_dir: Path) -> None:
    """A job EXECUTING under this live runner that no thread runs (its end could not be
    written) ends in ERROR after the grace period, not EXECUTING forever."""
    runner = JobRunner(store, csv_executor, jobs_dir, lost_job_grace=0.0)
    job = store.create(make_job())
    store.set_phase(job.job_id, Phase.QUEUED)
    assert store.claim_next(runner.runner_key) is not None
    fresh = JobRunner(store, csv_executor, jobs_dir, lost_job_grace=3600.0)
    fresh.runner_key = runner.runner_key
    fresh.check_running()
    assert store.get(job.job_id).phase is Phase.EXECUTING  # still within its grace
    time.sleep(0.01)
    runner.check_running()
    final = store.get(job.job_id)
    assert final.phase is Phase.ERROR
    assert final.error is not None and "could not be recorded" in final.error.message


SERVER_SCRIPT = """
import sys, time
from pathlib import Path
from vo_service.database.pool import Pool
from vo_service.uws.runner import JobRunner
from vo_service.uws.store import JobStore

def forever(job, workspace):
    (workspace.directory / "partial").write_text("x")
    time.sleep(600)
    return []

pool = Pool("runner", sys.argv[1], 4)
pool.open()
runner = JobRunner(JobStore(pool), forever, Path(sys.argv[2]), threads=1,
                   poll_interval=0.1)
runner.start()
print("started", flush=True)
time.sleep(600)
"""


def test_a_killed_server_leaves_no_job_executing(store: JobStore, jobs_dir: Path) -> None:
    """A real server process dies (SIGKILL) while running a job; the next runner to start
    sets that job to ERROR with the restart reason, but not while the process lives."""
    import os
    import signal
    import subprocess
    import sys

    job = store.create(make_job())
    store.set_phase(job.job_id, Phase.QUEUED)
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, store.dsn, str(jobs_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "started"
        wait_for_phase(store, job.job_id, {Phase.EXECUTING})
        survivor = JobRunner(store, csv_executor, jobs_dir)
        assert survivor.recover() == []  # the other server is alive: hands off
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        deadline = time.monotonic() + 10
        recovered: list[str] = []
        while not recovered and time.monotonic() < deadline:
            recovered = survivor.recover()
            time.sleep(0.1)
        assert recovered == [job.job_id]
        final = store.get(job.job_id)
        assert final.phase is Phase.ERROR
        assert final.error is not None and final.error.message == RESTART_MESSAGE
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_liveness_lock_is_taken_again_after_losing_its_session(
    store: JobStore, jobs_dir: Path
) -> None:
    runner = JobRunner(store, csv_executor, jobs_dir, threads=1)
    runner.start()
    try:
        admin = psycopg2.connect(store.dsn)
        admin.autocommit = True
        cursor = admin.cursor()
        held = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = %s::oid AND objid = %s::oid")
        args = (LOCK_CLASS_RUNNER, runner.runner_key)
        cursor.execute(held, args)
        assert cursor.fetchone() == (1,)
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE application_name = 'lick-uws-runner' "
                       "AND datname = current_database()")
        time.sleep(0.3)
        cursor.execute(held, args)
        assert cursor.fetchone() == (0,)
        runner.check_liveness()
        cursor.execute(held, args)
        assert cursor.fetchone() == (1,)
        admin.close()
    finally:
        runner.stop()


def test_lines_logged_by_a_job_name_it_and_its_end_is_reported(store: JobStore,
                                                               jobs_dir: Path) -> None:
    """What a job logs carries ``job-<id>`` as its request id (the JSON lines' field),
    and the runner tells the metrics each job's final phase."""
    import logging

    from vo_service.logs import REQUEST_ID

    seen: list[str] = []

    def logging_executor(job: Job, workspace: Workspace) -> list[JobResult]:
        logging.getLogger("lick_archive.test").warning("working on it")
        seen.append(REQUEST_ID.get())
        return csv_executor(job, workspace)

    ended: list[str] = []
    runner = JobRunner(store, logging_executor, jobs_dir, on_finished=ended.append)
    job = store.create(make_job(params=[("QUERY", "SELECT 1")]))
    store.set_phase(job.job_id, Phase.QUEUED)
    assert runner.run_one() is not None
    assert seen == [f"job-{job.job_id}"] and REQUEST_ID.get() == "-"
    assert ended == ["COMPLETED"]
