"""Fuzzing the translator: whatever the text, ``translate`` gives a Translation or an
AdqlError that says where (line and column) in a printable message; and what it
accepts, PostgreSQL runs without anything but a data exception.

Three generators: queries built from the grammar over the real tables (mostly
well-typed, some deliberately not, with hostile literals: numbers beyond bigint and
double, NaN and infinities made by CAST, quotes and backslashes, Unicode); random
soup of ADQL tokens and hostile characters; and generated queries with junk
inserted.  Accepted grammar queries run as the query role in a read-only
transaction with a short statement timeout.  PostgreSQL may refuse values (SQLSTATE
class 22: division by zero, overflow, a bad timestamp string) or cancel a slow
statement (57014); any other SQLSTATE means the translator let through something
it should have refused with a clear message (class 42: a type or grouping error),
or wrote SQL that fails (XX000: pgSphere's internal errors), and fails the test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.adql.checks import check_error, run_checked, translate_checked
from vo_service.adql import AdqlError, translate
from vo_service.adql.parser import keywords

# --- the values of the two tables, by type; "f." only when lick.files is joined --------

NUMBERS = {"o": ["o.s_ra", "o.s_dec", "o.t_exptime", "o.calib_level", "o.access_estsize",
                 "o.s_fov", "o.t_min", "o.em_min", "s_resolution"],
           "f": ["f.exptime", "f.airmass", "f.ra", "f.file_size"],
           "g": ["g.n", "g.a", "g.c"]}
STRINGS = {"o": ["o.obs_id", "o.target_name", "o.instrument_name", "o.dataproduct_type"],
           "f": ["f.object", "f.observer", "f.program"], "g": ["g.m"]}
TIMESTAMPS = {"o": ["o.obs_release_date"], "f": ["f.date_obs", "f.night"]}
UNITS = ["'arcsec'", "'rad'", "'mas'", "'h'", "'kg'", "'nonsense'", "''", "'deg**2'",
         "'1e999deg'", "'(((('", "'10**400 deg'"]

# Literals: ordinary ones, and (drawn less often) hostile ones.
NUMBER_LITERALS = ["0", "1", "-1", "2", "3", "10", "20", "29", "45", "90", "180", "360",
                   "0.5", ".5", "5.", "1e3", "1E+3", "-2.5", "2147483648", "NULL"]
HOSTILE_NUMBERS = [
    "30", "91", "-91", "2147483647", "-2147483649", "9223372036854775807",
    "-9223372036854775808", "9223372036854775808", "99999999999999999999999", "1e308",
    "1e309", "1e-400", "0." + "0" * 400 + "1", "1" + "0" * 320 + ".5",
    "CAST('NaN' AS DOUBLE PRECISION)", "CAST('Infinity' AS DOUBLE PRECISION)",
    "CAST('-Infinity' AS REAL)", "CAST('1e400' AS DOUBLE PRECISION)",
]
STRING_LITERALS = ["''", "'x'", "'M31'", "'%31%'", "'2020-01-01'", "'a#b#c'", "NULL"]
HOSTILE_STRINGS = [
    "'O''Brien'", "'back\\slash'", "'\\'", "'_%\\_'", "'NaN'", "'Infinity'",
    "'2020-13-45'", "'not a date'", "'ünïcødé ✓'", "'\u202e\u200b'", "'qua' \n 'tsch'",
    "'Circle ICRS 10 20 1'", "'' || NULL",
]
POINT_LITERALS = ["POINT(o.s_ra, o.s_dec)", "POINT(10, 20)", "POINT('ICRS', 10, 20)",
                  "CAST('10 20' AS POINT)", "REGION('Position 10 20')", "CENTROID(o.s_region)"]
GEOMETRY_LITERALS = [
    "o.s_region", "REGION('Circle ICRS 10 20 1')", "REGION('Box ICRS 10 20 2 3')",
    "REGION('Polygon 10 20 11 20 11 21')", "CAST('10 20 1' AS CIRCLE)",
    "CAST('10 20 11 20 11 21' AS POLYGON)", "CIRCLE(10, 20, 1)", "BOX(10, 20, 1, 2)",
    "POLYGON(10, 20, 11, 20, 11, 21)", "CIRCLE(o.s_ra, o.s_dec, o.s_fov)",
]
HOSTILE_GEOMETRIES = [
    "REGION('Circle ICRS nan 20 1')", "REGION('Circle ICRS 10 20 100')",
    "CAST('inf 0' AS POINT)", "CAST('1 100' AS POINT)", "POINT('GALACTIC', 10, 20)",
    "REGION('Union ICRS (Circle 1 2 3 Circle 4 5 6)')", "CAST('1 2 3' AS POLYGON)", "NULL",
]


def _columns(table: dict[str, list[str]], aliases: tuple[str, ...]) -> list[str]:
    return [c for a in aliases for c in table.get(a, [])]


class Grammar:
    """Expression generators over the tables in scope (aliases ``o`` and maybe ``f``).

    Each strategy is built once per depth (``_made``): rebuilt for every draw, the
    nested strategies would cost more than the queries.
    """

    def __init__(self, aliases: tuple[str, ...]):
        self.numbers = _columns(NUMBERS, aliases)
        self.strings = _columns(STRINGS, aliases)
        self.timestamps = _columns(TIMESTAMPS, aliases)
        self._made: dict[tuple[str, int], st.SearchStrategy[str]] = {}

    def _once(self, kind: str, depth: int,
              make: Callable[[int], st.SearchStrategy[str]]) -> st.SearchStrategy[str]:
        if (kind, depth) not in self._made:
            self._made[kind, depth] = make(depth)
        return self._made[kind, depth]

    def number(self, depth: int) -> st.SearchStrategy[str]:
        return self._once("number", depth, self._number)

    def string(self, depth: int) -> st.SearchStrategy[str]:
        return self._once("string", depth, self._string)

    def geometry(self, depth: int) -> st.SearchStrategy[str]:
        return self._once("geometry", depth, self._geometry)

    def value(self, depth: int) -> st.SearchStrategy[str]:
        return self._once("value", depth, self._value)

    def condition(self, depth: int) -> st.SearchStrategy[str]:
        return self._once("condition", depth, self._condition)

    def point(self, depth: int) -> st.SearchStrategy[str]:
        return self._once("point", depth, self._point)

    def _number(self, depth: int) -> st.SearchStrategy[str]:
        columns = st.sampled_from(self.numbers)
        leaf = st.one_of(columns, columns, st.sampled_from(NUMBER_LITERALS),
                         st.sampled_from(HOSTILE_NUMBERS))
        if depth <= 0:
            return leaf
        n, s, g = self.number(depth - 1), self.string(depth - 1), self.geometry(depth - 1)
        p = self.point(depth - 1)
        t = self.timestamp()
        f1 = st.sampled_from(["ABS", "ACOS", "ASIN", "ATAN", "COS", "COT", "SIN", "TAN",
                              "DEGREES", "RADIANS", "EXP", "LOG", "LOG10", "SQRT", "CEILING",
                              "FLOOR", "ROUND", "TRUNCATE"])
        return st.one_of(
            leaf, leaf,
            st.tuples(n, st.sampled_from(["+", "-", "*", "/"]), n).map(" ".join),
            st.tuples(n, st.sampled_from(["+", "-", "*", "/"]), n)
            .map("({0[0]} {0[1]} {0[2]})".format),
            n.map("- {}".format),
            st.tuples(f1, n).map("{0[0]}({0[1]})".format),
            st.tuples(st.sampled_from(["ATAN2", "POWER", "MOD"]), n, n).map(
                "{0[0]}({0[1]}, {0[2]})".format),
            st.tuples(st.sampled_from(["ROUND", "TRUNCATE"]), n,
                      st.sampled_from(["0", "2", "-3", "400", "401", "1.5", "o.calib_level"]))
            .map("{0[0]}({0[1]}, {0[2]})".format),
            st.sampled_from(["PI()", "RAND()", "RAND(3)", "COUNT(*)"]),
            st.tuples(n, n).map("COALESCE({0[0]}, {0[1]})".format),
            st.tuples(n | s, st.sampled_from(["SMALLINT", "INTEGER", "BIGINT", "REAL",
                                              "DOUBLE PRECISION"]))
            .map("CAST({0[0]} AS {0[1]})".format),
            p.map("COORD1({})".format), p.map("COORD2({})".format), g.map("AREA({})".format),
            st.tuples(p, p).map("DISTANCE({0[0]}, {0[1]})".format),
            st.tuples(n, n, n, n).map("DISTANCE({0[0]}, {0[1]}, {0[2]}, {0[3]})".format),
            st.tuples(st.sampled_from(["CONTAINS", "INTERSECTS"]), p | g, g)
            .map("{0[0]}({0[1]}, {0[2]})".format),
            st.tuples(st.sampled_from(self.numbers), st.sampled_from(UNITS))
            .map("IN_UNIT({0[0]}, {0[1]})".format),
            st.tuples(n, n, n).map("ivo_healpix_index({0[0]}, {0[1]}, {0[2]})".format),
            st.tuples(n, n, n, n).map("ivo_interval_overlaps({0[0]}, {0[1]}, {0[2]}, {0[3]})"
                                      .format),
            t.map("ivo_to_mjd({})".format), t.map("ivo_to_jd({})".format),
            st.tuples(st.sampled_from(["ivo_hasword", "ivo_nocasematch", "ivo_hashlist_has"]),
                      s, s).map("{0[0]}({0[1]}, {0[2]})".format),
            st.tuples(st.sampled_from(["AVG", "SUM", "MIN", "MAX", "COUNT"]),
                      st.sampled_from(["", "DISTINCT "]), n).map("{0[0]}({0[1]}{0[2]})".format),
        )

    def _string(self, depth: int) -> st.SearchStrategy[str]:
        columns = st.sampled_from(self.strings)
        leaf = st.one_of(columns, columns, st.sampled_from(STRING_LITERALS),
                         st.sampled_from(HOSTILE_STRINGS))
        if depth <= 0:
            return leaf
        s, n = self.string(depth - 1), self.number(depth - 1)
        return st.one_of(
            leaf, leaf,
            st.tuples(st.sampled_from(["LOWER", "UPPER"]), s).map("{0[0]}({0[1]})".format),
            st.tuples(s, s | n).map("{0[0]} || {0[1]}".format),
            st.tuples(s, s).map("COALESCE({0[0]}, {0[1]})".format),
            st.tuples(n | s, st.sampled_from(["CHAR(3)", "VARCHAR(5)", "CHAR(0)",
                                              "VARCHAR(99999999999)", "VARCHAR"]))
            .map("CAST({0[0]} AS {0[1]})".format),
            self.geometry(depth - 1).map("COORDSYS({})".format),
            st.tuples(s, st.sampled_from(["', '", "NULL", "o.obs_id"]))
            .map("ivo_string_agg({0[0]}, {0[1]})".format),
        )

    def timestamp(self) -> st.SearchStrategy[str]:
        strings = st.sampled_from(STRING_LITERALS + HOSTILE_STRINGS)
        return st.sampled_from(self.timestamps) | strings.map(
            "CAST({} AS TIMESTAMP)".format) | strings

    def _point(self, depth: int) -> st.SearchStrategy[str]:
        leaf = st.sampled_from(POINT_LITERALS)
        if depth <= 0:
            return leaf
        n = self.number(depth - 1)
        return st.one_of(leaf, st.tuples(n, n).map("POINT({0[0]}, {0[1]})".format),
                         self.geometry(depth - 1).map("CENTROID({})".format))

    def _geometry(self, depth: int) -> st.SearchStrategy[str]:
        leaf = st.one_of(st.sampled_from(GEOMETRY_LITERALS), st.sampled_from(GEOMETRY_LITERALS),
                         st.sampled_from(HOSTILE_GEOMETRIES), self.point(0))
        if depth <= 0:
            return leaf
        n, p = self.number(depth - 1), self.point(depth - 1)
        return st.one_of(
            leaf, leaf, p,
            st.tuples(p, n).map("CIRCLE({0[0]}, {0[1]})".format),
            st.tuples(n, n, n).map("CIRCLE({0[0]}, {0[1]}, {0[2]})".format),
            st.tuples(n, n, n, n).map("BOX({0[0]}, {0[1]}, {0[2]}, {0[3]})".format),
            st.lists(n, min_size=6, max_size=8).map(lambda v: f"POLYGON({', '.join(v)})"),
            st.lists(p, min_size=3, max_size=4).map(lambda v: f"POLYGON({', '.join(v)})"),
        )

    def _value(self, depth: int) -> st.SearchStrategy[str]:
        """Any value; mostly numbers and strings, sometimes what the slot does not want."""
        return st.one_of(self.number(depth), self.number(depth), self.string(depth),
                         self.timestamp(), self.geometry(depth))

    def _condition(self, depth: int) -> st.SearchStrategy[str]:
        n, s, g, v = self.number(1), self.string(1), self.geometry(1), self.value(1)
        p = self.point(1)
        op = st.sampled_from(["=", "<>", "!=", "<", "<=", ">", ">="])
        simple = st.one_of(
            st.tuples(n, op, n).map(" ".join), st.tuples(s, op, s).map(" ".join),
            st.tuples(v, op, v).map(" ".join),
            st.tuples(self.timestamp(), op, self.timestamp()).map(" ".join),
            st.tuples(n, st.sampled_from(["", "NOT "]), n, n)
            .map("{0[0]} {0[1]}BETWEEN {0[2]} AND {0[3]}".format),
            st.tuples(v, st.sampled_from(["", "NOT "]), st.lists(v, min_size=1, max_size=3))
            .map(lambda t: f"{t[0]} {t[1]}IN ({', '.join(t[2])})"),
            st.tuples(s, st.sampled_from(["LIKE", "NOT LIKE", "ILIKE"]), s).map(" ".join),
            st.tuples(v, st.sampled_from(["IS NULL", "IS NOT NULL"])).map(" ".join),
            st.tuples(st.sampled_from(["CONTAINS", "INTERSECTS"]), p | g, g,
                      st.sampled_from(["0", "1", "2"]))
            .map("{0[0]}({0[1]}, {0[2]}) = {0[3]}".format),
            st.tuples(p, p, st.sampled_from(["<", "<=", ">"]), n)
            .map("DISTANCE({0[0]}, {0[1]}) {0[2]} {0[3]}".format),
            st.tuples(n, st.sampled_from(["", "NOT "]))
            .map("{0[0]} {0[1]}IN (SELECT calib_level FROM ivoa.obscore)".format),
            st.just("EXISTS (SELECT 1 FROM lick.files AS f2 WHERE "
                    "f2.obs_publisher_did = o.obs_publisher_did)"),
        )
        if depth <= 0:
            return simple
        c = self.condition(depth - 1)
        return st.one_of(simple, simple,
                         st.tuples(c, st.sampled_from(["AND", "OR"]), c)
                         .map("({0[0]} {0[1]} {0[2]})".format),
                         c.map("NOT ({})".format))


FROMS = {
    ("o",): ["ivoa.obscore AS o", "(SELECT * FROM ivoa.obscore WHERE s_dec > 0) AS o",
             "(SELECT DISTINCT * FROM ivoa.obscore) AS o", "cte AS o"],
    ("o", "f"): ["ivoa.obscore AS o, lick.files AS f",
                 "ivoa.obscore AS o JOIN lick.files AS f "
                 "ON o.obs_publisher_did = f.obs_publisher_did",
                 "ivoa.obscore AS o LEFT OUTER JOIN lick.files AS f USING (obs_publisher_did)",
                 "ivoa.obscore AS o NATURAL JOIN lick.files AS f"],
    ("o", "g"): ["ivoa.obscore AS o JOIN (SELECT calib_level AS c, COUNT(*) AS n, AVG(s_ra) AS a, "
                 "MIN(obs_id) AS m FROM ivoa.obscore GROUP BY calib_level) AS g "
                 "ON o.calib_level = g.c"],
}


GRAMMARS = {aliases: Grammar(aliases) for aliases in FROMS}


@st.composite
def select(draw, aliases: tuple[str, ...] | None = None, width: int | None = None) -> str:
    """One SELECT over obscore (and maybe files), with any of its clauses."""
    aliases = aliases or draw(st.sampled_from(list(FROMS)))
    g = GRAMMARS[aliases]
    width = width or draw(st.integers(1, 3))
    items = [draw(g.value(2)) for _ in range(width)]
    sql = "SELECT "
    sql += draw(st.sampled_from(["", "", "DISTINCT ", "ALL "]))
    sql += draw(st.sampled_from(["", "", "", "", "", "", "", "", "TOP 5 ", "TOP 0 ",
                                 "TOP 99999999999999999999 "]))
    sql += ", ".join(f"{item} AS x{i}" if draw(st.booleans()) else item
                     for i, item in enumerate(items))
    sql += " FROM " + draw(st.sampled_from(FROMS[aliases]))
    if draw(st.booleans()):
        sql += " WHERE " + draw(g.condition(2))
    if draw(st.integers(0, 4)) == 0:
        sql += " GROUP BY " + ", ".join(draw(st.lists(
            st.sampled_from(g.numbers + g.strings), min_size=1, max_size=2)))
        if draw(st.booleans()):
            sql += " HAVING " + draw(g.condition(0))
    return sql


@st.composite
def queries(draw) -> str:
    width = draw(st.integers(1, 3))
    sql = draw(select(width=width))
    if draw(st.integers(0, 5)) == 0:
        op = draw(st.sampled_from(["UNION", "UNION ALL", "EXCEPT", "INTERSECT", "INTERSECT ALL"]))
        right = draw(select(width=width))
        if draw(st.booleans()):
            sql, right = f"({sql})", f"({right} ORDER BY 1 OFFSET 1)"
        sql += f" {op} {right}"
    if "cte AS o" in sql or draw(st.integers(0, 6)) == 0:
        sql = "WITH cte AS (SELECT * FROM ivoa.obscore WHERE s_ra < 180) " + sql
    if draw(st.booleans()):
        sql += " ORDER BY " + draw(st.sampled_from(["1", "1 DESC", "x0", "2", "o.s_ra",
                                                    "o.s_ra + 1", "99999999999999999999"]))
    if draw(st.integers(0, 3)) == 0:
        sql += " OFFSET " + draw(st.sampled_from(["0", "10", "9223372036854775807"]))
    return sql


HOSTILE = ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\ud800", "\udfff", "\ufffe", "\u202e",
           "\u00a0", "\u2028", "\t", "\r\n", "٣", "ſ", "::", "$$", ";", "--", "/*", "\\"]
TOKENS = [*sorted(keywords()), "(", ")", ",", ".", "*", "+", "-", "/", "||", "=", "<>", "<",
          ">=", "'x'", "''", "'", '"', '"a"', "1", "2.5", "1e999", "99999999999999999999999",
          "ivoa.obscore", "lick.files", "s_ra", "o", "o.s_dec", "ivo_healpix_index",
          "ivo_hasword", "NaN", *HOSTILE]


@settings(max_examples=800, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(queries())
def test_grammar_queries_translate_cleanly_and_run(readonly_conn, metadata, text: str) -> None:
    t = translate_checked(text, metadata)
    if t is not None:
        run_checked(readonly_conn, text, t)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).flatmap(
    lambda tokens: st.sampled_from([" ", ""]).map(lambda sep: sep.join(tokens)))
    | st.text(max_size=120))
def test_token_soup_fails_cleanly(metadata, text: str) -> None:
    translate_checked(text, metadata)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries(), st.integers(0, 400), st.sampled_from(TOKENS) | st.text(min_size=1, max_size=3))
def test_mangled_queries_fail_cleanly(metadata, text: str, at: int, junk: str) -> None:
    at = min(at, len(text))
    translate_checked(text[:at] + junk + text[at:], metadata)


@pytest.mark.parametrize("depth", [10, 45, 99, 100, 101, 500, 5000])
@pytest.mark.parametrize("form", [
    "SELECT {open}1{close} FROM ivoa.obscore",
    "SELECT {fn}s_ra{close} FROM ivoa.obscore",
    "SELECT s_ra FROM ivoa.obscore WHERE {nots}s_ra > 1{close}",
    "SELECT s_ra FROM ivoa.obscore WHERE s_ra IN {subqueries}(1){close}",
    "SELECT s_ra FROM {joins}",
    "{unions}",
    "SELECT {minus}s_ra FROM ivoa.obscore",
])
def test_deep_nesting_is_refused_where_it_happens(metadata, readonly_conn, form: str,
                                                  depth: int) -> None:
    """Nesting beyond the limit is an AdqlError at the level that is too deep (never
    a RecursionError); what is accepted runs (PostgreSQL has a stack limit too)."""
    text = form.format(
        open="(" * depth, close=")" * depth, fn="ABS(" * depth, nots="NOT (" * depth,
        subqueries="(SELECT s_ra FROM ivoa.obscore WHERE s_ra IN " * depth,
        joins="ivoa.obscore AS o JOIN " + " JOIN ".join(
            f"lick.files AS f{i} USING (obs_publisher_did)" for i in range(depth)),
        unions=" UNION ".join(["SELECT s_ra FROM ivoa.obscore"] * depth),
        minus="- " * depth)
    try:
        t = translate(text, metadata, limit=101)
    except AdqlError as exc:
        check_error(text, exc)
        assert depth > 10 and "{open}" not in form  # parentheses alone do not nest
        assert "nests more than 100 levels" in exc.message or "longer than" in exc.message
        return
    assert depth <= 101 or "{open}" in form
    run_checked(readonly_conn, text, t)
