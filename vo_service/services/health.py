"""Is the service able to answer? (VOSI availability)."""

from __future__ import annotations

import psycopg2

from vo_service.context import AppContext
from vo_service.errors import TransientFault
from vo_service.serialize.vosi import availability


def database_available(ctx: AppContext) -> tuple[bool, str]:
    try:
        with ctx.database.query() as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM tap_schema.tables")
            row = cur.fetchone()
    except (TransientFault, psycopg2.Error) as exc:
        return False, f"the database is not reachable: {exc}"
    return True, f"service is accepting queries; {row[0] if row else 0} tables published"


def availability_document(ctx: AppContext, available: bool, note: str) -> bytes:
    return availability(available, note, ctx.started)
