"""The application context: everything a request handler or the CLI needs, built once.

Both ``create_app`` and the CLI build it from :class:`Settings`; nothing here happens
at import time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from auth.identity import load_secret
from auth.passwords import VerifiedCredentialCache
from vo_service.database.pool import Database
from vo_service.database.setup import DatabaseTarget, database_target
from vo_service.settings import Settings
from vo_service.uws.events import PhaseEvents
from vo_service.uws.service import UwsConfig, UwsService
from vo_service.uws.store import JobStore


@dataclass
class AppContext:
    settings: Settings
    target: DatabaseTarget
    database: Database
    jobs: UwsService
    events: PhaseEvents
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    credentials: VerifiedCredentialCache = field(default_factory=VerifiedCredentialCache)
    _secret: bytes | None = field(default=None, repr=False)
    _secret_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def identity_secret(self) -> bytes:
        """The key that binds query transactions to requesters (read once, lazily)."""
        with self._secret_lock:
            if self._secret is None:
                with self.database.owner() as conn, conn.cursor() as cur:
                    self._secret = load_secret(cur)
            return self._secret

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        """Everything is created closed: :meth:`open` connects, :meth:`close` releases."""
        target = database_target(settings)
        u = settings.uws
        events = PhaseEvents(target.owner_dsn)
        jobs = UwsService(
            JobStore(target.owner_dsn, max_connections=settings.database.pool_size),
            UwsConfig(
                jobs_dir=settings.data_dir / "jobs",
                max_active_jobs_per_owner=u.max_active_jobs_per_owner,
                max_active_anonymous_jobs=u.max_active_anonymous_jobs,
                default_execution_duration_s=u.default_execution_duration_s,
                hard_execution_duration_s=u.hard_execution_duration_s,
                default_destruction_days=u.default_destruction_days,
                hard_destruction_days=u.hard_destruction_days,
            ),
            events,
        )
        return cls(settings=settings, target=target,
                   database=Database(target, settings.database.pool_size),
                   jobs=jobs, events=events)

    @property
    def jobs_dir(self) -> Path:
        return self.jobs.config.jobs_dir

    @property
    def base_url(self) -> str:
        return self.settings.service.base_url.rstrip("/")

    @property
    def tap_url(self) -> str:
        return f"{self.base_url}/tap"
