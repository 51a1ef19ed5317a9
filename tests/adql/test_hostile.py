"""Hostile input that is accepted: what it gets instead of an error from PostgreSQL
(NULL for values with no answer), and what error messages look like.

The refusals themselves, with their positions, are in the corpus (``INVALID``).
"""

from __future__ import annotations

import pytest

from tests.adql.checks import run_checked
from vo_service.adql import AdqlError, translate
from vo_service.adql.errors import readable
from vo_service.adql.lexer import MAX_QUERY_LENGTH


def _rows(conn, metadata, adql: str) -> list[tuple]:
    t = translate(adql, metadata)
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL statement_timeout = '5s'")
            cur.execute(t.sql, t.params)
            return cur.fetchall()
    finally:
        conn.rollback()


@pytest.mark.parametrize("args", [
    "10, CAST('NaN' AS DOUBLE PRECISION), 0", "10, 0, CAST('NaN' AS DOUBLE PRECISION)",
    "10, CAST('Infinity' AS DOUBLE PRECISION), 0", "10, 0, 90.5", "10, s_ra, s_dec * 10",
    "calib_level * 40, s_ra, s_dec", "calib_level / 2.0, s_ra, s_dec",
    "CAST('NaN' AS DOUBLE PRECISION), 0, 0", "NULL, s_ra, s_dec",
])
def test_healpix_index_of_input_without_an_index_is_null(readonly_conn, metadata,
                                                          args: str) -> None:
    rows = _rows(readonly_conn, metadata,
                 f"SELECT ivo_healpix_index({args}) FROM ivoa.obscore WHERE calib_level = 1 "
                 "AND s_dec > 20")
    assert rows and all(row == (None,) for row in rows)


def test_healpix_index_at_the_edges(readonly_conn, metadata) -> None:
    """Huge and negative RA, the poles, the highest order: an index, no error."""
    rows = _rows(readonly_conn, metadata, "SELECT ivo_healpix_index(29, 1e300, 0), "
                 "ivo_healpix_index(0, -720, -90), ivo_healpix_index(29, 359.9999999999, 90) "
                 "FROM ivoa.obscore WHERE obs_id = '2018-01/0001'")
    (a, b, c), = rows
    assert 0 <= a < 12 * 4**29 and b == 8 and 0 <= c < 12 * 4**29


def test_circle_radius_from_a_column_outside_0_to_90_is_null(readonly_conn, metadata) -> None:
    rows = _rows(readonly_conn, metadata,
                 "SELECT t_exptime, CIRCLE(s_ra, s_dec, t_exptime), "
                 "CONTAINS(POINT(s_ra, s_dec), CIRCLE(s_ra, s_dec, t_exptime - 100)) "
                 "FROM ivoa.obscore WHERE t_exptime IS NOT NULL")
    assert any(r[0] > 100 for r in rows) and any(r[0] < 90 for r in rows)
    for exptime, circle, inside in rows:
        assert (circle is None) == (exptime > 90)
        assert (inside is None) == (not 0 <= exptime - 100 <= 90)


def test_strings_with_quotes_and_backslashes_round_trip(readonly_conn, metadata) -> None:
    rows = _rows(readonly_conn, metadata,
                 "SELECT 'O''Brien\\', '\\' || '%_', '\u202e\u00e9\u2713' FROM ivoa.obscore "
                 "WHERE target_name = 'O''Brien''s star' AND obs_id LIKE '%0_0%'")
    assert rows and set(rows) == {("O'Brien\\", "\\%_", "\u202e\u00e9\u2713")}


@pytest.mark.parametrize("adql", [
    "SELECT DISTINCT calib_level, NULL FROM ivoa.obscore UNION SELECT 1, s_ra FROM ivoa.obscore",
    "SELECT 1, s_ra FROM ivoa.obscore EXCEPT SELECT DISTINCT calib_level, NULL FROM "
    "ivoa.obscore",
    "SELECT CIRCLE(1, 2, 3) FROM ivoa.obscore INTERSECT ALL SELECT CIRCLE(1, 2, 3) FROM "
    "ivoa.obscore",
    "SELECT POINT(s_ra, s_dec) FROM ivoa.obscore EXCEPT ALL SELECT NULL FROM ivoa.obscore",
    "SELECT s_region FROM ivoa.obscore UNION ALL SELECT DISTINCT s_region FROM ivoa.obscore",
    "SELECT DISTINCT NULL FROM ivoa.obscore UNION ALL SELECT s_region FROM ivoa.obscore",
    "SELECT COUNT(*) FROM (SELECT DISTINCT POINT(s_ra, s_dec) AS p FROM ivoa.obscore) AS t "
    "WHERE CONTAINS(t.p, CIRCLE(10, 20, 2)) = 1",
    "WITH q AS (SELECT s_region FROM ivoa.obscore UNION SELECT s_region FROM ivoa.obscore) "
    "SELECT COUNT(*) FROM q WHERE INTERSECTS(s_region, CIRCLE(10, 20, 2)) = 1",
])
def test_set_operations_and_distinct_with_nulls_and_geometries_run(readonly_conn, metadata,
                                                      adql: str) -> None:
    run_checked(readonly_conn, adql, translate(adql, metadata))


def test_the_null_side_of_a_union_takes_the_other_sides_type(metadata) -> None:
    t = translate("SELECT NULL AS a FROM ivoa.obscore UNION SELECT s_ra FROM ivoa.obscore",
                  metadata)
    assert t.columns[0].name == "a" and t.columns[0].datatype == "double"


def test_the_smallest_bigint_is_a_literal(metadata) -> None:
    t = translate("SELECT -9223372036854775808 FROM ivoa.obscore", metadata)
    assert list(t.params.values()) == [-(2**63)] and t.columns[0].datatype == "long"


def test_tiny_decimals_are_doubles(readonly_conn, metadata) -> None:
    rows = _rows(readonly_conn, metadata, "SELECT 0." + "0" * 400 + "1, 1e-400 FROM "
                 "ivoa.obscore WHERE obs_id = '2018-01/0001'")
    assert rows == [(0.0, 0.0)]


def test_query_length_limit(metadata) -> None:
    head = "SELECT s_ra FROM ivoa.obscore WHERE obs_id = '"
    text = head + "x" * (MAX_QUERY_LENGTH - len(head) - 1) + "'"
    assert len(text) == MAX_QUERY_LENGTH
    translate(text, metadata)
    with pytest.raises(AdqlError, match="longer than") as info:
        translate("\n" + text, metadata)
    assert (info.value.line, info.value.column) == (2, MAX_QUERY_LENGTH)


def test_long_chains_are_translated_in_linear_time(metadata) -> None:
    """20 000 terms: the SQL is joined once (building it step by step was quadratic)."""
    t = translate("SELECT " + " + ".join(["s_ra"] * 20000) + " || 'x' FROM ivoa.obscore",
                  metadata)
    assert t.sql.count("t0.s_ra") == 20000 and t.sql.startswith("SELECT (CAST(" + "(" * 19999)


def test_unicode_white_space_separates_words(metadata) -> None:
    translate("SELECT\u00a0s_ra\u3000FROM\u2003ivoa.obscore", metadata)


@pytest.mark.parametrize("raw, shown", [
    ("a\x07b", "a\\x07b"), ("\u202e", "\\u202e"), ("\ud800", "\\ud800"), ("x\ny", "x\\ny"),
    ("é ✓", "é ✓"),
])
def test_messages_escape_what_is_not_printable(raw: str, shown: str) -> None:
    assert readable(raw) == shown
    assert AdqlError(f"unknown column {raw}", 1, 2).message == f"unknown column {shown}"


def test_messages_are_bounded(metadata) -> None:
    with pytest.raises(AdqlError) as info:
        translate(f"SELECT {'a' * 50000} FROM ivoa.obscore", metadata)
    assert len(info.value.message) < 120 and "…" in info.value.message
    assert len(readable("word " * 1000)) <= 600


def test_a_cast_does_not_hide_an_aggregate() -> None:
    """Found by the grammar fuzz: a column beside CAST(AVG(...)) without GROUP BY."""
    from vo_service.adql import AdqlError, Metadata, translate

    with pytest.raises(AdqlError, match="GROUP BY"):
        translate("SELECT o.s_ra, CAST(AVG(o.s_ra) AS SMALLINT) FROM ivoa.obscore AS o",
                  Metadata.from_declaration())
