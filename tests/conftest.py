"""Shared fixtures: a throwaway PostgreSQL + pgSphere cluster, migrated to head.

``LICK_ARCHIVE_TEST_DATABASE_URL`` points the suite at an existing server instead
(its role must be able to create databases and roles).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vo_service.database import setup
from vo_service.settings import Settings, load_settings

PROJECT = Path(__file__).resolve().parent.parent


@dataclass
class TestDatabase:
    """One migrated database: DSNs for the owner and the read-only query role."""

    __test__ = False

    settings: Settings
    target: setup.DatabaseTarget
    _created: dict[str, TestDatabase] = field(default_factory=dict)

    @property
    def owner_dsn(self) -> str:
        return self.target.owner_dsn

    @property
    def query_dsn(self) -> str:
        return self.target.query_dsn

    @property
    def schedule_dsn(self) -> str | None:
        return self.target.schedule_dsn

    def new_database(self, name: str) -> TestDatabase:
        """An isolated database in the same cluster, migrated to head (cached by name)."""
        if name not in self._created:
            dbname = f"test_{name}"
            settings = self.settings
            if not settings.embedded:
                from sqlalchemy.engine import make_url

                url = make_url(settings.database.url)
                setup_admin = url.set(drivername="postgresql").render_as_string(
                    hide_password=False)
                import psycopg2

                conn = psycopg2.connect(setup_admin)
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
                    if cur.fetchone() is None:
                        cur.execute(f'CREATE DATABASE "{dbname}"')
                conn.close()
                settings = settings.replace(
                    database={"url": url.set(database=dbname).render_as_string(
                        hide_password=False)})
            target = setup.initialize(settings, dbname=dbname)
            self._created[name] = TestDatabase(settings, target)
        return self._created[name]


def _test_settings(data_dir: Path) -> Settings:
    settings = load_settings(PROJECT / "conf" / "lick-archive.toml", environ={})
    url = os.environ.get("LICK_ARCHIVE_TEST_DATABASE_URL", "")
    return settings.replace(service={"data_dir": data_dir}, database={"url": url})


@pytest.fixture(scope="session")
def database() -> Iterator[TestDatabase]:
    data_dir = Path(tempfile.mkdtemp(prefix="lick-test-"))
    data_dir.chmod(0o755)
    settings = _test_settings(data_dir)
    try:
        target = setup.initialize(settings)
        yield TestDatabase(settings, target)
    finally:
        if settings.embedded:
            setup.embedded_cluster(settings).destroy()
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
