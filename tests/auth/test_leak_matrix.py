"""Row visibility enforced by PostgreSQL, checked as the query role.

Every principal of :mod:`tests.auth.leak_matrix` runs the same SQL over ivoa.obscore
and lick.files — plain rows, counts, aggregates, joins, subqueries, set operations,
an upload (temp table) join, probes for hidden identifiers, a leaky function — and
must get exactly its permitted rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import psycopg2.extensions
import pytest

from auth.identity import begin_query_transaction, load_secret
from auth.policy import leakproof_statements
from auth.principals import Principal
from tests.auth import leak_matrix
from tests.auth.conftest import empty_tables
from tests.auth.leak_matrix import DID_PREFIX, EXPECTED, LeakDataset

PRINCIPALS = sorted(EXPECTED)


@pytest.fixture(scope="module")
def dataset(auth_db) -> LeakDataset:
    empty_tables(auth_db.owner_dsn)
    return leak_matrix.install(auth_db.owner_dsn)


@pytest.fixture(scope="module")
def secret(auth_db, dataset) -> bytes:
    conn = psycopg2.connect(auth_db.owner_dsn)
    with conn, conn.cursor() as cur:
        value = load_secret(cur)
    conn.close()
    return value


@pytest.fixture(scope="module")
def query_conn(auth_db) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(auth_db.query_dsn)
    yield conn
    conn.close()


def run_as(conn: psycopg2.extensions.connection, principal: Principal, secret: bytes,
           sql: str, params: tuple[object, ...] = (), *,
           temp_tables: tuple[str, ...] = (), setup: tuple[tuple[str, tuple[object, ...]], ...] = ()
           ) -> list[tuple[object, ...]]:
    """One read-only query transaction as ``principal``; rolled back afterwards."""
    try:
        with conn.cursor() as cur:
            begin_query_transaction(cur, principal, secret, temp_tables=temp_tables)
            for statement, args in setup:
                cur.execute(statement, args)
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.rollback()


def dids(rows: list[tuple[object, ...]]) -> frozenset[str]:
    return frozenset(str(r[0]) for r in rows)


ROW_QUERIES = {
    "obscore": "SELECT obs_publisher_did FROM ivoa.obscore",
    "files": "SELECT obs_publisher_did FROM lick.files",
    "join": "SELECT o.obs_publisher_did FROM ivoa.obscore AS o"
            " JOIN lick.files AS f ON f.obs_publisher_did = o.obs_publisher_did",
    "files_left_join_obscore": "SELECT f.obs_publisher_did FROM lick.files AS f"
            " LEFT JOIN ivoa.obscore AS o USING (obs_publisher_did)",
    "subquery_in": "SELECT obs_publisher_did FROM lick.files WHERE obs_publisher_did IN"
            " (SELECT obs_publisher_did FROM ivoa.obscore WHERE s_ra > 0)",
    "correlated_exists": "SELECT o.obs_publisher_did FROM ivoa.obscore AS o WHERE EXISTS"
            " (SELECT 1 FROM lick.files AS f WHERE f.obs_publisher_did = o.obs_publisher_did)",
    "union": "SELECT obs_publisher_did FROM ivoa.obscore"
            " UNION SELECT obs_publisher_did FROM lick.files",
    "union_all": "SELECT obs_publisher_did FROM ivoa.obscore"
            " UNION ALL SELECT obs_publisher_did FROM lick.files",
    "cte": "WITH x AS (SELECT * FROM ivoa.obscore) SELECT obs_publisher_did FROM x",
    "by_header_text": "SELECT obs_publisher_did FROM lick.files WHERE header LIKE 'OBJECT%%'",
    "lateral": "SELECT f.obs_publisher_did FROM ivoa.obscore AS o,"
            " LATERAL (SELECT obs_publisher_did FROM lick.files AS f"
            "          WHERE f.obs_publisher_did = o.obs_publisher_did) AS f",
}


@pytest.mark.parametrize("query", sorted(ROW_QUERIES))
@pytest.mark.parametrize("who", PRINCIPALS)
def test_rows(query_conn, dataset, secret, who: str, query: str) -> None:
    rows = run_as(query_conn, dataset.principals[who], secret, ROW_QUERIES[query])
    assert dids(rows) == dataset.visible_dids(who)


COUNT_QUERIES = {
    "count_obscore": "SELECT count(*) FROM ivoa.obscore",
    "count_files": "SELECT count(*) FROM lick.files",
    "count_distinct_union": "SELECT count(DISTINCT d) FROM (SELECT obs_publisher_did AS d"
            " FROM ivoa.obscore UNION ALL SELECT obs_publisher_did FROM lick.files) AS u",
    "count_grouped_sum": "SELECT coalesce(sum(n), 0) FROM (SELECT instrument_dir, count(*) AS n"
            " FROM lick.files GROUP BY instrument_dir) AS g",
    "count_where_owner_unknown": "SELECT count(*) FROM ivoa.obscore WHERE true OR owner_ids = '{}'",
}


@pytest.mark.parametrize("query", sorted(COUNT_QUERIES))
@pytest.mark.parametrize("who", PRINCIPALS)
def test_counts(query_conn, dataset, secret, who: str, query: str) -> None:
    rows = run_as(query_conn, dataset.principals[who], secret, COUNT_QUERIES[query])
    assert rows == [(len(EXPECTED[who]),)]


@pytest.mark.parametrize("who", PRINCIPALS)
def test_aggregates_see_only_visible_values(query_conn, dataset, secret, who: str) -> None:
    rows = run_as(query_conn, dataset.principals[who], secret,
                  "SELECT array_agg(target_name ORDER BY target_name),"
                  " max(obs_release_date) IS NULL FROM ivoa.obscore")
    names = rows[0][0]
    assert isinstance(names, list)
    assert sorted(names) == sorted(EXPECTED[who])


@pytest.mark.parametrize("who", PRINCIPALS)
def test_upload_join(query_conn, dataset, secret, who: str) -> None:
    everything = [(dataset.did(name),) for name in leak_matrix.ALL]
    rows = run_as(
        query_conn, dataset.principals[who], secret,
        "SELECT u.did FROM pg_temp.upload AS u JOIN ivoa.obscore AS o"
        " ON o.obs_publisher_did = u.did",
        temp_tables=("CREATE TEMP TABLE upload (did text) ON COMMIT DROP",),
        setup=tuple(("INSERT INTO pg_temp.upload VALUES (%s)", d) for d in everything),
    )
    assert dids(rows) == dataset.visible_dids(who)


@pytest.mark.parametrize("who", PRINCIPALS)
def test_probing_hidden_identifiers_finds_nothing(query_conn, dataset, secret, who) -> None:
    hidden = sorted(leak_matrix.ALL - EXPECTED[who])
    for name in hidden:
        did = dataset.did(name)
        rows = run_as(
            query_conn, dataset.principals[who], secret,
            "SELECT (SELECT count(*) FROM ivoa.obscore WHERE obs_publisher_did = %s),"
            "       (SELECT count(*) FROM lick.files WHERE obs_publisher_did = %s"
            "           OR filename = %s OR header LIKE %s)",
            (did, did, f"{name}.fits", f"%{name}'%"),
        )
        assert rows == [(0, 0)], name


@pytest.mark.parametrize("who", ["anonymous", "alice", "carol"])
def test_leaky_function_sees_only_permitted_rows(query_conn, dataset, secret, who) -> None:
    """A user function in the WHERE clause runs after the policy (not leakproof)."""
    seen: list[str] = []
    try:
        with query_conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ WRITE")
            cur.execute(
                "CREATE FUNCTION pg_temp.leak(text) RETURNS boolean LANGUAGE plpgsql"
                " COST 0.0000001 AS $$ BEGIN RAISE NOTICE 'LEAK %', $1; RETURN true; END $$"
            )
            begin_query_transaction(cur, dataset.principals[who], secret)
            query_conn.notices.clear()
            cur.execute("SELECT count(*) FROM ivoa.obscore WHERE pg_temp.leak(obs_publisher_did)")
            cur.execute("SELECT count(*) FROM lick.files WHERE pg_temp.leak(obs_publisher_did)")
            seen = [n.split("LEAK ", 1)[1].strip() for n in query_conn.notices if "LEAK" in n]
    finally:
        query_conn.rollback()
    assert seen, "the function ran"
    assert set(seen) == dataset.visible_dids(who)


def test_release_date_passing_opens_rows_without_reingest(auth_db, query_conn, dataset,
                                                          secret) -> None:
    """Move a row's release to the current night, then to tomorrow: visibility follows."""
    names = ("alice_only", "bob_tomorrow")
    owner = psycopg2.connect(auth_db.owner_dsn)
    try:
        today = leak_matrix.current_night()
        with owner, owner.cursor() as cur:
            for table, column in (("ivoa.obscore", "obs_release_date"),
                                  ("lick.files", "release_date")):
                cur.execute(
                    f"UPDATE {table} SET {column} = %s::date WHERE obs_publisher_did = ANY(%s)",
                    (today, [dataset.did(n) for n in names]),
                )
        expected = dataset.visible_dids("anonymous") | {dataset.did(n) for n in names}
        for table in ("ivoa.obscore", "lick.files"):
            rows = run_as(query_conn, dataset.principals["anonymous"], secret,
                          f"SELECT obs_publisher_did FROM {table}")
            assert dids(rows) == expected
        with owner, owner.cursor() as cur:
            for table, column in (("ivoa.obscore", "obs_release_date"),
                                  ("lick.files", "release_date")):
                cur.execute(
                    f"UPDATE {table} SET {column} = %s::date + 1 WHERE obs_publisher_did = ANY(%s)",
                    (today, [dataset.did(n) for n in names]),
                )
        rows = run_as(query_conn, dataset.principals["anonymous"], secret,
                      "SELECT obs_publisher_did FROM ivoa.obscore")
        assert dids(rows) == dataset.visible_dids("anonymous")
    finally:
        leak_matrix_restore(owner, dataset)
        owner.close()


def leak_matrix_restore(owner: psycopg2.extensions.connection, dataset: LeakDataset) -> None:
    with owner, owner.cursor() as cur:
        for row in leak_matrix.ROWS:
            for table, column in (("ivoa.obscore", "obs_release_date"),
                                  ("lick.files", "release_date")):
                cur.execute(f"UPDATE {table} SET {column} = %s WHERE obs_publisher_did = %s",
                            (row.release_date(), dataset.did(row.name)))


def test_the_owner_role_sees_everything(auth_db, dataset) -> None:
    """The table owner (ingest, maintenance) bypasses the policies."""
    conn = psycopg2.connect(auth_db.owner_dsn)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM ivoa.obscore WHERE obs_publisher_did LIKE %s",
                    (DID_PREFIX + "%",))
        assert cur.fetchone() == (len(leak_matrix.ALL),)
    conn.close()


def test_without_begin_the_query_role_is_anonymous(query_conn, dataset) -> None:
    try:
        with query_conn.cursor() as cur:
            cur.execute("SELECT obs_publisher_did FROM ivoa.obscore")
            assert dids(list(cur.fetchall())) == dataset.visible_dids("anonymous")
    finally:
        query_conn.rollback()


CONE = ("SELECT obs_publisher_did FROM ivoa.obscore WHERE spoint(radians(s_ra), radians(s_dec))"
        " @ scircle(spoint(radians(10.0), radians(20.0)), radians(0.5))")


@pytest.fixture(scope="module")
def leakproof_geometry(auth_db) -> None:
    """Run auth.policy's statements as the superuser, as db init must."""
    admin = auth_db.target.admin_dsn
    if admin is None:
        pytest.skip("no superuser DSN for this database")
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in leakproof_statements():
            cur.execute(statement)
    conn.close()


# INTERSECTS(s_region, CIRCLE(...)) as the ADQL translator writes it: through the
# indexed bounding circle of s_region (tap_schema.declaration.S_REGION_BOUND).
REGION = ("SELECT obs_publisher_did FROM ivoa.obscore WHERE s_region_bound && scircle(spoint("
          "radians(10.0), radians(20.0)), radians(0.5)) AND s_region && scircle(spoint("
          "radians(10.0), radians(20.0)), radians(0.5))")


@pytest.mark.parametrize("who", PRINCIPALS)
@pytest.mark.parametrize("query,index", [(CONE, "obscore_s_point_idx"),
                                         (REGION, "obscore_s_region_bound_idx")])
def test_cone_search_uses_the_index_and_sees_only_permitted_rows(
        query_conn, dataset, secret, leakproof_geometry, who: str, query: str,
        index: str) -> None:
    setup = (("SET LOCAL enable_seqscan = off", ()),)
    plan = run_as(query_conn, dataset.principals[who], secret, "EXPLAIN " + query, setup=setup)
    assert any(index in str(line[0]) for line in plan), plan
    rows = run_as(query_conn, dataset.principals[who], secret, query, setup=setup)
    assert dids(rows) == dataset.visible_dids(who)


# An upload cross-match as the ADQL translator writes it: the circle's centre comes
# from the uploaded table, so it is built by auth.policy.SAFE_CIRCLE (LEAKPROOF).
XMATCH = ("SELECT o.obs_publisher_did FROM pg_temp.upload AS u JOIN ivoa.obscore AS o ON"
          " spoint(radians(o.s_ra), radians(o.s_dec)) @ public.lick_scircle(spoint("
          "radians(u.ra), radians(u.dec)), radians(0.5))")


@pytest.mark.parametrize("who", PRINCIPALS)
def test_upload_cross_match_uses_the_index_and_sees_only_permitted_rows(
        query_conn, dataset, secret, leakproof_geometry, who: str) -> None:
    """Without the LEAKPROOF circle the join condition is a filter over every visible
    row for every uploaded row (bench/tap.py: 6 s instead of 17 ms on 20,000 rows)."""
    upload = (("CREATE TEMP TABLE upload (ra float8, dec float8) ON COMMIT DROP"),)
    setup = (("INSERT INTO pg_temp.upload VALUES (10, 20), (200, -10)", ()),
             ("ANALYZE pg_temp.upload", ()), ("SET LOCAL enable_seqscan = off", ()))
    plan = run_as(query_conn, dataset.principals[who], secret, "EXPLAIN " + XMATCH,
                  temp_tables=upload, setup=setup)
    assert any("Index Cond" in str(line[0]) and "lick_scircle" in str(line[0])
               for line in plan), plan
    rows = run_as(query_conn, dataset.principals[who], secret, XMATCH, temp_tables=upload,
                  setup=setup)
    assert dids(rows) == dataset.visible_dids(who)


def test_the_safe_circle_never_fails(query_conn, leakproof_geometry) -> None:
    """LEAKPROOF must be true: no radius, not even NaN or infinity, raises."""
    from auth.policy import SAFE_CIRCLE
    from vo_service.adql.geometry import SAFE_CIRCLE as TRANSLATOR_CIRCLE

    assert SAFE_CIRCLE == TRANSLATOR_CIRCLE
    try:
        with query_conn.cursor() as cur:
            cur.execute(f"SELECT {SAFE_CIRCLE}(spoint(1, 1), r)::text FROM unnest(ARRAY["
                        "-1, 'NaN', 'Infinity', '-Infinity', 1.5707963267948966, 2, 0.1, "
                        "NULL]::float8[]) AS r")
            got = [row[0] for row in cur.fetchall()]
            cur.execute("SELECT proleakproof FROM pg_proc WHERE oid = %s::regprocedure",
                        (f"{SAFE_CIRCLE}(spoint, double precision)",))
            assert cur.fetchone() == (True,)
    finally:
        query_conn.rollback()
    assert got[:4] == [None] * 4 and got[5] is None and got[7] is None
    assert got[4] is not None and got[6] is not None
