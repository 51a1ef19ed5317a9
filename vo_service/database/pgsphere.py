"""Installing pgSphere into a database, working around Debian 12's broken package.

Debian 12's ``postgresql-15-pgsphere`` (1.2.0 snapshot) cannot be created on current
PostgreSQL 15 minor releases: two compatibility operators ``@(bigint, smoc)`` and
``@(spoint, smoc)`` declare a commutator that PostgreSQL now rejects ("commutator
operator @> is already the commutator of operator <@").  Upstream dropped them
(pgsphere PR #92, released in 1.4).  When ``CREATE EXTENSION`` fails this way, we run
the packaged install script ourselves without that block, as a superuser: every other
type, function, operator and index class is the stock one.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg2
import psycopg2.extensions

_COMPAT_BLOCK = re.compile(
    r"-- a minimal set of backwards-compatible operators for GAVO DaCHS.*?(?=-- debugging)",
    re.S,
)


def _installed(cur: psycopg2.extensions.cursor) -> bool:
    cur.execute("SELECT to_regtype('public.spoint') IS NOT NULL")
    row = cur.fetchone()
    return bool(row and row[0])


def _install_script(cur: psycopg2.extensions.cursor) -> str:
    cur.execute("SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")
    row = cur.fetchone()
    assert row is not None
    extension_dir = Path(row[0]) / "extension"
    control = (extension_dir / "pg_sphere.control").read_text()
    match = re.search(r"default_version\s*=\s*'([^']+)'", control)
    if match is None:
        raise RuntimeError(f"no default_version in {extension_dir / 'pg_sphere.control'}")
    script = (extension_dir / f"pg_sphere--{match.group(1)}.sql").read_text()
    script = "\n".join(line for line in script.splitlines() if not line.startswith("\\echo"))
    script = _COMPAT_BLOCK.sub("", script)
    return script.replace("MODULE_PATHNAME", "$libdir/pg_sphere")


def install_pgsphere(conn: psycopg2.extensions.connection) -> None:
    """Make pgSphere available in the connected database (needs a superuser)."""
    conn.autocommit = True
    with conn.cursor() as cur:
        if _installed(cur):
            return
        try:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_sphere")
            return
        except psycopg2.errors.InvalidFunctionDefinition:
            pass
        conn.autocommit = False
        cur.execute(_install_script(cur))
        conn.commit()
        conn.autocommit = True
