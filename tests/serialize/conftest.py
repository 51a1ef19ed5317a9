"""Fixtures of the serializer tests that need the test database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest


@pytest.fixture(scope="module")
def query_connection(database: Any) -> Iterator[Any]:
    """One connection of the read-only query role, as the TAP executor uses."""
    conn = psycopg2.connect(database.query_dsn)
    yield conn
    conn.close()
