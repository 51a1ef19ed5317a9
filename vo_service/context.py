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
from vo_service.uws.service import UwsService
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
        events = PhaseEvents(target.owner_dsn)
        jobs = UwsService(
            JobStore(target.owner_dsn, max_connections=settings.database.pool_size),
            settings.uws, settings.data_dir / "jobs", events,
        )
        return cls(settings=settings, target=target,
                   database=Database(target, settings.database.pool_size),
                   jobs=jobs, events=events)

    @property
    def jobs_dir(self) -> Path:
        return self.jobs.jobs_dir

    @property
    def base_url(self) -> str:
        return self.settings.service.base_url.rstrip("/")

    @property
    def tap_url(self) -> str:
        return f"{self.base_url}/tap"
