"""The application context: everything a request handler or the CLI needs, built once.

Both ``create_app`` and the CLI build it from :class:`Settings`; nothing here happens
at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from vo_service.database.pool import Database
from vo_service.database.setup import DatabaseTarget, database_target
from vo_service.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    target: DatabaseTarget
    database: Database
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        target = database_target(settings)
        return cls(settings=settings, target=target,
                   database=Database(target, settings.database.pool_size))

    @property
    def base_url(self) -> str:
        return self.settings.service.base_url.rstrip("/")

    @property
    def tap_url(self) -> str:
        return f"{self.base_url}/tap"
