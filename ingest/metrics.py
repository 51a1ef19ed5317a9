"""The watcher's own Prometheus metrics, served on ``[ingest] metrics_port``.

The web service's ``/metrics`` reports what the database holds (files by instrument,
rejections by reason); the watcher, often on another host (the NFS server), reports
what it does: files ingested (new, updated) and rejected by reason as counters, its
polls and their failures, the files waiting to become stable, and when it last
completed a poll — the figure an alert watches (a watcher that is stuck or cannot reach
the database stops advancing it).  Port 0 (the default) serves nothing.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from ingest.summary import IngestSummary

PREFIX = "lick_archive_watch"


class WatchMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.files = Counter(f"{PREFIX}_files", "Files written by the watcher: new or updated",
                             ["result"], registry=registry)
        self.rejected = Counter(f"{PREFIX}_rejected_files",
                                "Files the watcher could not read, by reason", ["reason"],
                                registry=registry)
        self.polls = Counter(f"{PREFIX}_polls", "Polls of the archive roots, by outcome",
                             ["outcome"], registry=registry)
        self.pending = Gauge(f"{PREFIX}_pending_files",
                             "Files seen but not yet stable (still being written)",
                             registry=registry)
        self.last_poll = Gauge(f"{PREFIX}_last_success_timestamp_seconds",
                               "When the last poll completed (Unix time)", registry=registry)
        self.recomputed = Counter(f"{PREFIX}_access_recomputed_nights",
                                  "Nights or directories whose access rules were re-applied "
                                  "(override files, schedule edits)", ["cause"],
                                  registry=registry)
        for result in ("new", "updated"):
            self.files.labels(result)
        for outcome in ("ok", "database_unavailable", "configuration"):
            self.polls.labels(outcome)
        self._server: Any = None

    def poll_done(self, summary: IngestSummary, pending: int, overrides: int,
                  schedule_nights: int) -> None:
        self.files.labels("new").inc(summary.new)
        self.files.labels("updated").inc(summary.updated)
        for reason, count in summary.rejected.items():
            self.rejected.labels(reason).inc(count)
        self.pending.set(pending)
        if overrides:
            self.recomputed.labels("override").inc(overrides)
        if schedule_nights:
            self.recomputed.labels("schedule").inc(schedule_nights)
        self.polls.labels("ok").inc()
        self.last_poll.set(time.time())

    def poll_failed(self, outcome: str) -> None:
        self.polls.labels(outcome).inc()

    def serve(self, host: str, port: int) -> None:
        """Serve the metrics over HTTP from a daemon thread (port 0: not at all)."""
        if port:
            self._server, _thread = start_http_server(port, host, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
