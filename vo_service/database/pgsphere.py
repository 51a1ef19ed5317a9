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


# Re-creates, in one server-side block, each negated operator whose function is its
# negator's (the positive test) with the ``_neg`` function; idempotent.  An operator
# that belongs to the extension is taken out of it and put back, so that ``DROP
# EXTENSION`` still removes everything.  Printed by ``lick-archive db superuser-sql``
# for external servers.
NEGATOR_REPAIR = """DO $repair$
DECLARE
    r record;
    options text;
BEGIN
    FOR r IN
        SELECT o.oprname AS name, o.oprleft::regtype::text AS lt,
               o.oprright::regtype::text AS rt, o.oprcode::regproc::text AS fn,
               com.oprname AS com, neg.oprname AS neg, o.oprrest::regproc::text AS rest,
               o.oprjoin::regproc::text AS jn, ext.extname AS ext
        FROM pg_operator o
        JOIN pg_operator neg ON neg.oid = o.oprnegate
        LEFT JOIN pg_operator com ON com.oid = o.oprcom
        LEFT JOIN pg_depend d ON d.classid = 'pg_operator'::regclass AND d.objid = o.oid
             AND d.deptype = 'e'
        LEFT JOIN pg_extension ext ON ext.oid = d.refobjid
        WHERE o.oprname LIKE '!%' AND o.oprcode = neg.oprcode
          AND to_regproc(o.oprcode::regproc::text || '_neg') IS NOT NULL
    LOOP
        IF r.ext IS NOT NULL THEN
            EXECUTE format('ALTER EXTENSION %I DROP OPERATOR %s (%s, %s)',
                           r.ext, r.name, r.lt, r.rt);
        END IF;
        EXECUTE format('DROP OPERATOR %s (%s, %s)', r.name, r.lt, r.rt);
        options := format('LEFTARG = %s, RIGHTARG = %s, PROCEDURE = %s_neg, NEGATOR = %s',
                          r.lt, r.rt, r.fn, r.neg);
        IF r.com IS NOT NULL THEN
            options := options || format(', COMMUTATOR = %s', r.com);
        END IF;
        IF r.rest <> '-' THEN
            options := options || format(', RESTRICT = %s', r.rest);
        END IF;
        IF r.jn <> '-' THEN
            options := options || format(', JOIN = %s', r.jn);
        END IF;
        EXECUTE format('CREATE OPERATOR %s (%s)', r.name, options);
        IF r.ext IS NOT NULL THEN
            EXECUTE format('ALTER EXTENSION %I ADD OPERATOR %s (%s, %s)',
                           r.ext, r.name, r.lt, r.rt);
        END IF;
    END LOOP;
END
$repair$"""


def repair_negators(conn: psycopg2.extensions.connection) -> None:
    """Run NEGATOR_REPAIR (needs the owner of the operators: a superuser)."""
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(NEGATOR_REPAIR)
