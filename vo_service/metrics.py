"""Prometheus metrics of the service (``/metrics``), cheap on the hot path.

:class:`Metrics` holds the service's metrics in a registry of its own (several apps in
one process, as in tests, do not collide).  What a request adds is a few counter
increments and a histogram observation: requests by route template (never the raw
path, so the label set stays bounded whatever clients send) and status, their
latency, response bytes; pools count admissions, waits, refusals and slots in use;
queries count their outcome; the UWS runner counts finished jobs by phase.

Figures that live in the database — jobs by phase, files ingested and rejected by
reason (the watcher may run on another machine) — are read at scrape time by
:class:`ArchiveCollector`, at most every :data:`ARCHIVE_REFRESH_S` seconds.

``serve --workers N`` runs several processes: prometheus_client's **multiprocess
mode** (``PROMETHEUS_MULTIPROC_DIR``, set by ``serve`` to a directory of its own under
``<data_dir>/run/metrics/<host>-<pid>`` before any metric exists) keeps each
process's values in memory-mapped files, and whichever worker answers a scrape sums
them all; gauges of processes that ended are dropped (:func:`drop_dead_processes`).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from vo_service.errors import QueryTimeout, ServiceError

PREFIX = "lick_archive"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Seconds the database figures (jobs, files) are reused between scrapes.
ARCHIVE_REFRESH_S = 15.0
#: The route label of a request no route matched (a 404 for any path).
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 300.0)
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0)


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def prepare_multiprocess_dir(run_dir: Path) -> Path:
    """A fresh, empty metrics directory for this server (``run_dir/metrics/<host>-<pid>``);
    those of this host's servers that are no longer running are removed.  Each server
    has its own, so that several on one data directory (tests, two instances, a data
    directory shared between hosts) keep their figures apart."""
    parent = run_dir / "metrics"
    parent.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    for old in parent.iterdir():
        owner, _, pid = old.name.rpartition("-")
        if owner == host and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    own = parent / f"{host}-{os.getpid()}"
    shutil.rmtree(own, ignore_errors=True)
    own.mkdir()
    return own


def drop_dead_processes(directory: Path) -> None:
    """Forget the live gauges (pool slots in use) of worker processes that ended."""
    for path in directory.glob("gauge_live*_*.db"):
        match = re.search(r"_(\d+)\.db$", path.name)
        if match and not _alive(int(match.group(1))):
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                int(match.group(1)), str(directory))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PoolMetrics:
    """What one connection pool reports: admissions, their waits, refusals, slots."""

    def __init__(self, metrics: Metrics, name: str, size: int) -> None:
        self._wait = metrics.pool_wait.labels(name)
        self._timeouts = metrics.pool_timeouts.labels(name)
        self._in_use = metrics.pool_in_use.labels(name)
        metrics.pool_size.labels(name).set(size)

    def admitted(self, waited_s: float) -> None:
        self._wait.observe(waited_s)
        self._in_use.inc()

    def left(self) -> None:
        self._in_use.dec()

    def refused(self, waited_s: float) -> None:
        self._wait.observe(waited_s)
        self._timeouts.inc()


@dataclass
class ArchiveFigures:
    """The database's figures at one scrape (filled by the /metrics handler)."""

    jobs: dict[str, int] = field(default_factory=dict)          # by phase
    files: dict[str, int] = field(default_factory=dict)         # by instrument
    rejected: dict[str, int] = field(default_factory=dict)      # by reason
    read_at: float = float("-inf")


class ArchiveCollector(Collector):
    """Gauges from the latest :class:`ArchiveFigures`."""

    def __init__(self, figures: ArchiveFigures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        yield _family("uws_jobs", "Async jobs by phase (from the database)", "phase",
                      self.figures.jobs)
        yield _family("archive_files", "Files in the archive by instrument (ingested)",
                      "instrument", self.figures.files)
        yield _family("ingest_rejected_files", "Files ingest could not read, by reason",
                      "reason", self.figures.rejected)


def _family(name: str, text: str, label: str, values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"{PREFIX}_{name}", text, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class Metrics:
    """The service's metrics (module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            f"{PREFIX}_http_requests", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=registry)
        self.latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=registry)
        self.response_bytes = Counter(
            f"{PREFIX}_http_response_bytes", "Response body bytes sent, by route template",
            ["route"], registry=registry)
        self.downloaded_bytes = Counter(
            f"{PREFIX}_downloaded_bytes",
            "Bytes of data products sent: files, headers, previews, tarballs, cutouts",
            ["route"], registry=registry)
        self.pool_size = Gauge(
            f"{PREFIX}_pool_size", "Connections of each pool (summed over workers)",
            ["pool"], registry=registry, multiprocess_mode="livesum")
        self.pool_in_use = Gauge(
            f"{PREFIX}_pool_in_use", "Admission slots taken now (summed over workers)",
            ["pool"], registry=registry, multiprocess_mode="livesum")
        self.pool_wait = Histogram(
            f"{PREFIX}_pool_admission_wait_seconds",
            "Time a request waited for a pool's admission slot (admitted or refused)",
            ["pool"],
            buckets=WAIT_BUCKETS, registry=registry)
        self.pool_timeouts = Counter(
            f"{PREFIX}_pool_admission_timeouts",
            "Requests refused (503) after waiting admission_wait_s for a slot", ["pool"],
            registry=registry)
        self.queries = Counter(
            f"{PREFIX}_queries", "Queries (TAP sync and async, SIA) by mode and outcome",
            ["mode", "outcome"], registry=registry)
        self.jobs_finished = Counter(
            f"{PREFIX}_uws_jobs_finished", "Async jobs that ended, by final phase",
            ["phase"], registry=registry)
        self.figures = ArchiveFigures()
        self._archive = ArchiveCollector(self.figures)
        registry.register(self._archive)

    def pool(self, name: str, size: int) -> PoolMetrics:
        return PoolMetrics(self, name, size)

    def request(self, route: str, method: str, status: int, seconds: float, sent: int,
                download: bool) -> None:
        method = method if method in METHODS else "other"
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
        if sent:
            self.response_bytes.labels(route).inc(sent)
            if download:
                self.downloaded_bytes.labels(route).inc(sent)

    def query(self, mode: str, outcome: str) -> None:
        self.queries.labels(mode, outcome).inc()

    def job_finished(self, phase: str) -> None:
        self.jobs_finished.labels(phase).inc()
        outcome = {"COMPLETED": "ok", "ABORTED": "cancelled"}.get(phase, "failed")
        self.queries.labels("async", outcome).inc()

    def archive_stale(self) -> bool:
        return time.monotonic() - self.figures.read_at >= ARCHIVE_REFRESH_S

    def set_archive(self, jobs: Iterable[tuple[str, int]], files: Iterable[tuple[str, int]],
                    rejected: Iterable[tuple[str, int]]) -> None:
        self.figures.jobs = dict(jobs)
        self.figures.files = dict(files)
        self.figures.rejected = dict(rejected)
        self.figures.read_at = time.monotonic()

    def exposition(self) -> bytes:
        """The text format: this process's registry, or in multiprocess mode every
        process's values plus this process's database figures."""
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        drop_dead_processes(directory)
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
            combined, path=str(directory))
        combined.register(self._archive)
        return generate_latest(combined)


def outcome_of(exc: BaseException | None) -> str:
    """A query's outcome label: ``ok``, ``rejected`` (the client's error: 4xx),
    ``timeout`` (its statement timeout), ``unavailable`` (503: database away, limits),
    ``cancelled`` (the client went away) or ``failed`` (our error)."""
    if exc is None:
        return "ok"
    if isinstance(exc, QueryTimeout):
        return "timeout"
    if isinstance(exc, ServiceError):
        if exc.status < 500:
            return "rejected"
        return "unavailable" if exc.status == 503 else "failed"
    if isinstance(exc, (OSError, anyio.get_cancelled_exc_class(), anyio.BrokenResourceError,
                        anyio.ClosedResourceError)):
        return "cancelled"
    return "failed"
