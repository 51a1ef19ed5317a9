"""User-defined functions: the ``ivo_`` functions of the IVOA catalogue of ADQL UDFs.

Each entry knows its TAPRegExt signature (``form``), its description for the
capabilities, the kinds of its arguments (checked by the compiler) and how to
write itself in stock PostgreSQL/pgSphere.  Functions answering 0/1 also give the
boolean form, so ``ivo_hasword(a, b) = 1`` becomes a plain predicate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from vo_service.adql import nodes as n
from vo_service.adql.errors import AdqlError
from vo_service.adql.typed import (
    Typed,
    need_number,
    need_string,
    refuse_aggregate_args,
    typed_null,
)


@dataclass(frozen=True)
class Udf:
    name: str
    form: str
    description: str
    arguments: tuple[str, ...]  # "number", "string", "timestamp" or "any" per argument
    compile: Callable[[Sequence[str]], Typed]
    aggregate: bool = False
    # Written as a sub-SELECT over its arguments: they cannot be aggregates.
    subquery: bool = False
    # A literal argument that must be an integer: (index, lowest, highest) allowed.
    literal_range: tuple[int, int, int] | None = None


def _predicate(sql: str) -> Typed:
    return Typed(f"CAST({sql} AS integer)", "int", predicate=sql)


def _hasword(a: Sequence[str]) -> Typed:
    return _predicate(f"(to_tsvector('simple', {a[0]}) @@ phraseto_tsquery('simple', {a[1]}))")


def _nocasematch(a: Sequence[str]) -> Typed:
    return _predicate(f"({a[0]} ILIKE {a[1]})")


def _interval_overlaps(a: Sequence[str]) -> Typed:
    return _predicate(f"({a[1]} >= {a[2]} AND {a[3]} >= {a[0]})")


def _hashlist_has(a: Sequence[str]) -> Typed:
    return _predicate(f"(lower({a[1]}) = ANY (string_to_array(lower({a[0]}), '#')))")


def _to_jd(a: Sequence[str]) -> Typed:
    return Typed(f"(extract(epoch FROM CAST({a[0]} AS timestamp)) / 86400.0 + 2440587.5)",
                 "double", unit="d")


def _to_mjd(a: Sequence[str]) -> Typed:
    return Typed(f"(extract(epoch FROM CAST({a[0]} AS timestamp)) / 86400.0 + 40587)",
                 "double", unit="d")


def _string_agg(a: Sequence[str]) -> Typed:
    return Typed(f"string_agg(CAST({a[0]} AS text), {a[1]})", "char", "*")


def _healpix_index(a: Sequence[str]) -> Typed:
    """NESTED HEALPix index (Górski et al. 2005, ang2pix_nest) in plain SQL.

    The arguments are evaluated once, in the innermost query ``v``.  Input with no
    index is NULL: an order that is not an integer from 0 to 29, an RA that is NaN or
    infinite, a Dec that is NaN or outside [-90, 90] (PostgreSQL would otherwise fail
    with "bigint out of range" in the middle of the arithmetic).  The test is a CASE
    around the computation, so that PostgreSQL folds it away for constant input
    before it could evaluate the computation at planning time.  The next query
    computes face number and (ix, iy) in the face; the bit interleaving runs over the
    order's bits with generate_series.
    """
    order, ra, dec = a
    valid = ("v.o BETWEEN 0 AND 29 AND v.o = trunc(v.o) AND abs(v.r) < 'Infinity' "
             "AND abs(v.d) <= 90")
    sql = (
        f"(SELECT CASE WHEN {valid} THEN "
        "(SELECT CAST(CAST(f.face AS bigint) * CAST(power(4, f.ord) AS bigint) + "
        "(SELECT COALESCE(sum((((f.ix >> b) & 1) << (2 * b)) "
        "| (((f.iy >> b) & 1) << (2 * b + 1))), 0)"
        " FROM generate_series(0, f.ord - 1) AS b) AS bigint) "
        "FROM (SELECT g.ord, "
        "CASE WHEN abs(g.z) <= 2.0 / 3 THEN CASE WHEN g.jp / g.ns = g.jm / g.ns "
        "THEN (g.jp / g.ns) | 4 WHEN g.jp / g.ns < g.jm / g.ns THEN g.jp / g.ns "
        "ELSE g.jm / g.ns + 8 END "
        "WHEN g.z > 0 THEN g.ntt ELSE g.ntt + 8 END AS face, "
        "CASE WHEN abs(g.z) <= 2.0 / 3 THEN g.jm & (g.ns - 1) "
        "WHEN g.z > 0 THEN g.ns - g.pm - 1 ELSE g.pp END AS ix, "
        "CASE WHEN abs(g.z) <= 2.0 / 3 THEN g.ns - (g.jp & (g.ns - 1)) - 1 "
        "WHEN g.z > 0 THEN g.ns - g.pp - 1 ELSE g.pm END AS iy "
        "FROM (SELECT h.ord, h.ns, h.z, h.ntt, "
        "CAST(floor(h.ns * (0.5 + h.tt) - h.ns * h.z * 0.75) AS bigint) AS jp, "
        "CAST(floor(h.ns * (0.5 + h.tt) + h.ns * h.z * 0.75) AS bigint) AS jm, "
        "LEAST(CAST(floor((h.tt - h.ntt) * h.tmp) AS bigint), h.ns - 1) AS pp, "
        "LEAST(CAST(floor((1 - (h.tt - h.ntt)) * h.tmp) AS bigint), h.ns - 1) AS pm "
        "FROM (SELECT k.ord, k.ns, k.z, k.tt, LEAST(3, CAST(floor(k.tt) AS integer)) AS ntt, "
        "k.ns * sqrt(3 * (1 - abs(k.z))) AS tmp "
        "FROM (SELECT CAST(v.o AS integer) AS ord, "
        "CAST(power(2, CAST(v.o AS integer)) AS bigint) AS ns, "
        "sin(radians(v.d)) AS z, "
        "mod(CAST(v.r AS numeric) + 360, 360) / 90.0 AS tt) AS k) AS h) AS g) AS f) END "
        f"FROM (SELECT CAST({order} AS double precision) AS o, "
        f"CAST({ra} AS double precision) AS r, "
        f"CAST({dec} AS double precision) AS d) AS v)"
    )
    return Typed(sql, "long")


_UDFS = (
    Udf("ivo_hasword", "ivo_hasword(haystack TEXT, needle TEXT) -> INTEGER",
        "1 if needle occurs in haystack as a word or sequence of words, ignoring case "
        "(PostgreSQL 'simple' text search tokenisation); 0 otherwise.",
        ("string", "string"), _hasword),
    Udf("ivo_nocasematch", "ivo_nocasematch(value TEXT, pattern TEXT) -> INTEGER",
        "1 if value matches the LIKE pattern ignoring case (as ILIKE); 0 otherwise.",
        ("string", "string"), _nocasematch),
    Udf("ivo_interval_overlaps",
        "ivo_interval_overlaps(l1 NUMERIC, h1 NUMERIC, l2 NUMERIC, h2 NUMERIC) -> INTEGER",
        "1 if the intervals [l1, h1] and [l2, h2] overlap (touching counts as overlap); "
        "0 otherwise.", ("number", "number", "number", "number"), _interval_overlaps),
    Udf("ivo_string_agg", "ivo_string_agg(expr TEXT, delim TEXT) -> TEXT",
        "An aggregate function concatenating the values of expr, separated by delim.",
        ("any", "string"), _string_agg, aggregate=True),
    Udf("ivo_hashlist_has", "ivo_hashlist_has(hashlist TEXT, item TEXT) -> INTEGER",
        "1 if item is, ignoring case, one of the words of the '#'-separated hashlist; "
        "0 otherwise.", ("string", "string"), _hashlist_has),
    Udf("ivo_to_jd", "ivo_to_jd(d TIMESTAMP) -> DOUBLE",
        "The Julian Date of the timestamp d (no time scale conversion).", ("timestamp",),
        _to_jd),
    Udf("ivo_to_mjd", "ivo_to_mjd(d TIMESTAMP) -> DOUBLE",
        "The Modified Julian Date of the timestamp d (no time scale conversion).",
        ("timestamp",), _to_mjd),
    Udf("ivo_healpix_index", "ivo_healpix_index(order INTEGER, ra DOUBLE, dec DOUBLE) -> BIGINT",
        "The NESTED HEALPix index of the position (ra, dec) in degrees (ICRS) at the given "
        "order (0 to 29); NULL where there is none (order not an integer from 0 to 29, "
        "RA NaN or infinite, Dec NaN or outside [-90, 90]).", ("number", "number", "number"),
        _healpix_index, literal_range=(0, 0, 29), subquery=True),
)

REGISTRY: dict[str, Udf] = {udf.name: udf for udf in _UDFS}

# How a bare NULL argument is typed, per argument kind.
_NULL_TYPES = {"number": ("double precision", "double"), "timestamp": ("timestamp", "char")}


def lookup(e: n.UdfCall) -> Udf:
    """The UDF a call names; checked before its arguments, so that an unknown function
    (``pg_sleep``, ``set_config``…) is what the message is about."""
    udf = REGISTRY.get(e.name)
    if udf is None:
        raise AdqlError(
            f"unknown function {e.name}: ADQL functions and the user-defined functions "
            "listed in the service capabilities are available", e.pos.line, e.pos.column)
    return udf


def call(udf: Udf, e: n.UdfCall, args: list[Typed]) -> Typed:
    """``udf`` of compiled arguments, after checking their number and kinds."""
    if udf.aggregate and any(a.aggregate for a in args):
        raise AdqlError(f"aggregate functions cannot be nested: {e.name} of an aggregate; "
                            "compute the inner one in a derived table first",
                        e.pos.line, e.pos.column)
    if udf.subquery:
        refuse_aggregate_args(e.name, e.pos, args)
    if len(args) != len(udf.arguments):
        raise AdqlError(f"{e.name} takes {len(udf.arguments)} arguments, not {len(args)}",
                        e.pos.line, e.pos.column)
    for arg, kind in zip(args, udf.arguments, strict=True):
        if kind == "number":
            need_number(arg, e.name, e.pos)
        elif kind == "string":
            need_string(arg, e.name, e.pos)
        elif kind == "timestamp" and not (arg.xtype == "timestamp" or arg.is_string
                                          or arg.datatype == "null"):
            raise AdqlError(f"{e.name} needs a timestamp", e.pos.line, e.pos.column)
    if udf.literal_range is not None:
        index, low, high = udf.literal_range
        value = args[index].literal
        if isinstance(value, int | float | Decimal) and not (
                low <= value <= high and value == int(value)):
            raise AdqlError(f"argument {index + 1} of {e.name} must be an integer and lie "
                            f"between {low} and {high}", e.pos.line, e.pos.column)
    args = [typed_null(a, *_NULL_TYPES.get(kind, ("text", "char")))
            for a, kind in zip(args, udf.arguments, strict=True)]
    result = udf.compile([a.sql for a in args])
    result.const = all(a.const for a in args) and not udf.aggregate
    result.aggregate = udf.aggregate or any(a.aggregate for a in args)
    result.name = e.name
    return result
