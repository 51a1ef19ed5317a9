"""Property tests: queries generated from the grammar (and mangled text) give a
Translation or an AdqlError, never anything else; generated valid queries run."""

from __future__ import annotations

import psycopg2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vo_service.adql import AdqlError, Translation, translate
from vo_service.adql.parser import keywords

COLUMNS = ["s_ra", "s_dec", "t_min", "t_exptime", "calib_level", "obs_id", "target_name",
           "s_region", "OBS_ID", '"s_dec"', "o.s_ra", "nope", "owner_ids"]
NUMERIC = ["s_ra", "s_dec", "t_min", "t_exptime", "calib_level", "o.s_dec"]


def _numbers() -> st.SearchStrategy[str]:
    return st.one_of(st.integers(-1000, 1000).map(str),
                     st.floats(-1e3, 1e3, allow_nan=False).map(lambda f: f"{f:.4f}"))


def _expr(depth: int = 2) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from([*NUMERIC, "NULL"]), _numbers())
    if depth == 0:
        return leaf
    sub = _expr(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/"]), sub).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["ABS", "SIN", "FLOOR", "CEILING", "DEGREES", "ROUND"]), sub)
        .map(lambda t: f"{t[0]}({t[1]})"),
        sub.map(lambda s: f"COORD1(POINT({s}, 10))"),
        st.tuples(sub, sub).map(lambda t: f"DISTANCE(POINT({t[0]}, 1), POINT(2, {t[1]}))"),
        st.tuples(sub, sub).map(lambda t: f"COALESCE({t[0]}, {t[1]})"),
        sub.map(lambda s: f"AREA(CIRCLE(s_ra, s_dec, ABS({s}) / 1000))"),
        sub.map(lambda s: f"AREA(BOX(s_ra, s_dec, 1, ABS({s}) / 1000))"),
        sub.map(lambda s: f"COORD2(CENTROID(POLYGON(s_ra, s_dec, s_ra + 1, s_dec, {s}, 0)))"),
        sub.map(lambda s: f"CAST({s} AS INTEGER)"),
        sub.map(lambda s: f"TRUNCATE({s}, 2) + MOD({s}, 7) + POWER({s}, 2)"),
        st.just("COORD1(CENTROID(s_region))"),
        st.just("IN_UNIT(s_ra, 'arcsec')"),
        st.just("ivo_healpix_index(3, s_ra, s_dec)"),
    )


def _condition() -> st.SearchStrategy[str]:
    comparison = st.tuples(_expr(1), st.sampled_from(["=", "<", ">=", "<>", "!="]), _expr(1)) \
        .map(" ".join)
    other = st.one_of(
        comparison,
        st.tuples(_expr(1), _expr(1), _expr(1)).map(lambda t: f"{t[0]} BETWEEN {t[1]} AND {t[2]}"),
        st.sampled_from(["target_name LIKE 'M%'", "target_name ILIKE '%31'", "s_fov IS NULL",
                         "t_exptime IS NOT NULL", "obs_id IN ('a', 'b')",
                         "1 = CONTAINS(POINT(s_ra, s_dec), CIRCLE(10, 20, 1))",
                         "INTERSECTS(s_region, BOX(10, 20, 1, 1)) = 0",
                         "DISTANCE(s_ra, s_dec, 10, 20) < 2",
                         "EXISTS (SELECT 1 FROM lick.files AS f WHERE f.obs_publisher_did = "
                         "o.obs_publisher_did)"]),
    )
    return st.recursive(other, lambda c: st.one_of(
        st.tuples(c, st.sampled_from(["AND", "OR"]), c).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        c.map(lambda s: f"NOT ({s})")), max_leaves=4)


FROMS = [
    "ivoa.obscore AS o",
    "ivoa.obscore AS o JOIN lick.files AS f USING (obs_publisher_did)",
    "ivoa.obscore AS o LEFT JOIN lick.files AS f ON o.obs_publisher_did = f.obs_publisher_did",
    "ivoa.obscore AS o NATURAL JOIN lick.files AS f",
    "(SELECT * FROM ivoa.obscore WHERE s_dec > 0) AS o",
    "ivoa.obscore AS o, lick.files AS f",
    "cte AS o",
]


@st.composite
def _select(draw, items: list[str]) -> str:
    top = draw(st.one_of(st.just(""), st.integers(0, 50).map(lambda n: f"TOP {n} ")))
    distinct = draw(st.sampled_from(["", "DISTINCT "]))
    sql = f"SELECT {distinct}{top}{', '.join(items)} FROM {draw(st.sampled_from(FROMS))}"
    if draw(st.booleans()):
        sql += " WHERE " + draw(_condition())
    return sql


@st.composite
def queries(draw) -> str:
    if draw(st.integers(0, 3)) == 0:
        items = draw(st.lists(st.tuples(
            st.sampled_from(["COUNT", "MIN", "MAX", "AVG", "SUM"]), _expr(1)).map(
                lambda t: f"{t[0]}({t[1]})"), min_size=1, max_size=3))
    else:
        items = draw(st.lists(st.one_of(_expr(2), st.sampled_from(COLUMNS)), min_size=1,
                              max_size=4))
    sql = draw(_select(items))
    if draw(st.integers(0, 3)) == 0:
        op = draw(st.sampled_from(["UNION", "UNION ALL", "EXCEPT", "INTERSECT ALL"]))
        sql += f" {op} " + draw(_select(items))
    if "cte AS o" in sql or draw(st.integers(0, 4)) == 0:
        sql = "WITH cte AS (SELECT * FROM ivoa.obscore WHERE s_ra < 180) " + sql
    if draw(st.booleans()):
        sql += " ORDER BY 1" + draw(st.sampled_from(["", " DESC"]))
    if draw(st.booleans()):
        sql += f" OFFSET {draw(st.integers(0, 300))}"
    return sql


def _translate_or_error(text: str, metadata) -> Translation | None:
    try:
        result = translate(text, metadata, limit=101)
    except AdqlError as exc:
        assert exc.message
        return None
    assert isinstance(result, Translation)
    return result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries())
def test_generated_queries_translate_or_fail_cleanly(metadata, text: str) -> None:
    _translate_or_error(text, metadata)


_TOKENS = [*"SELECT*FROMWHERE ()'\",.;:$-+/<>=_1x\n", *sorted(keywords()), " ivoa.obscore ",
           " s_ra "]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=30).map(" ".join) | st.text(max_size=80))
def test_arbitrary_text_translates_or_fails_cleanly(metadata, text: str) -> None:
    _translate_or_error(text, metadata)


@settings(max_examples=100, deadline=None)
@given(queries(), st.integers(0, 200), st.text(min_size=1, max_size=3))
def test_mangled_queries_translate_or_fail_cleanly(metadata, text: str, at: int, junk: str):
    at = min(at, len(text))
    _translate_or_error(text[:at] + junk + text[at:], metadata)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries())
def test_generated_valid_queries_run(query_conn, metadata, text: str) -> None:
    """What translates is well-formed SQL: the database may refuse values (division by
    zero, overflow, a circle radius over 90°) but never the syntax, a name or a type,
    and never crashes."""
    result = _translate_or_error(text, metadata)
    if result is None:
        return
    with query_conn.cursor() as cur:
        try:
            cur.execute(result.sql, result.params)
            rows = cur.fetchall()
        except psycopg2.DataError:
            return
        except psycopg2.InternalError as exc:  # pgSphere reports bad values as XX000
            assert "radius" in str(exc) or "degrees" in str(exc), str(exc)
            return
    assert len(rows) <= 101
    assert all(len(r) == len(result.columns) for r in rows)
