"""Installing pgSphere into a database, working around Debian 12's broken package.

Debian 12's ``postgresql-15-pgsphere`` (1.2.0 snapshot) cannot be created on current
PostgreSQL 15 minor releases: two compatibility operators ``@(bigint, smoc)`` and
``@(spoint, smoc)`` declare a commutator that PostgreSQL now rejects ("commutator
operator @> is already the commutator of operator <@").  Upstream dropped them
(pgsphere PR #92, released in 1.4).  When ``CREATE EXTENSION`` fails this way, we run
the packaged install script ourselves without that block, as a superuser: every other
type, function, operator and index class is the stock one.

Six negated operators of pgSphere's install script call the positive test instead of
its ``_neg`` function, ``!&&(spoly, spoly)`` among them ("do not overlap" answers "do
overlap"; still so upstream).  PostgreSQL rewrites ``NOT (a && b)`` into ``a !&& b``,
so ADQL's ``INTERSECTS(s_region, POLYGON(...)) = 0`` returned overlapping rows.
`repair_negators` re-creates each such operator with its ``_neg`` function.
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
        if not _installed(cur):
            try:
                cur.execute("CREATE EXTENSION IF NOT EXISTS pg_sphere")
            except psycopg2.errors.InvalidFunctionDefinition:
                conn.autocommit = False
                cur.execute(_install_script(cur))
                conn.commit()
                conn.autocommit = True
    repair_negators(conn)


# Negated operators whose function is the one of their negator (the positive test).
_BROKEN_NEGATORS = """
SELECT o.oprname, o.oprleft::regtype::text, o.oprright::regtype::text,
       o.oprcode::regproc::text, com.oprname, neg.oprname,
       o.oprrest::regproc::text, o.oprjoin::regproc::text, ext.extname
FROM pg_operator o
JOIN pg_operator neg ON neg.oid = o.oprnegate
LEFT JOIN pg_operator com ON com.oid = o.oprcom
LEFT JOIN pg_depend d ON d.classid = 'pg_operator'::regclass AND d.objid = o.oid
     AND d.deptype = 'e'
LEFT JOIN pg_extension ext ON ext.oid = d.refobjid
WHERE o.oprname LIKE '!%' AND o.oprcode = neg.oprcode
  AND to_regproc(o.oprcode::regproc::text || '_neg') IS NOT NULL
"""


def repair_negators(conn: psycopg2.extensions.connection) -> list[str]:
    """Re-create each negated operator that calls the positive test; returns their names.

    Idempotent; one transaction.  An operator that belongs to the extension is taken
    out of it and put back, so that ``DROP EXTENSION`` still removes everything.
    """
    repaired = []
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            cur.execute(_BROKEN_NEGATORS)
            for name, left, right, function, com, neg, rest, join, ext in cur.fetchall():
                signature = f"{name} ({left}, {right})"
                if ext:
                    cur.execute(f'ALTER EXTENSION "{ext}" DROP OPERATOR {signature}')
                cur.execute(f"DROP OPERATOR {signature}")
                options = [f"LEFTARG = {left}", f"RIGHTARG = {right}",
                           f"PROCEDURE = {function}_neg", f"NEGATOR = {neg}"]
                options += [f"COMMUTATOR = {com}"] if com else []
                options += [f"RESTRICT = {rest}"] if rest != "-" else []
                options += [f"JOIN = {join}"] if join != "-" else []
                cur.execute(f"CREATE OPERATOR {name} ({', '.join(options)})")
                if ext:
                    cur.execute(f'ALTER EXTENSION "{ext}" ADD OPERATOR {signature}')
                repaired.append(signature)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.autocommit = True
    return repaired
