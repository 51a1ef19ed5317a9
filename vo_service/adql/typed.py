"""Typed SQL fragments: a compiled value and the type rules every compiler layer shares.

A :class:`Typed` is SQL text plus the VOTable type and descriptive metadata of its
value, so that the select list yields the result FIELDs.  The checks here
(``need_number``, ``check_arity``…) are the one statement of ADQL's typing rules;
the expression, geometry and UDF layers call them instead of repeating them.
"""

from __future__ import annotations

from dataclasses import dataclass

from vo_service.adql import nodes as n
from vo_service.adql.errors import AdqlError

INTEGRAL = {"short": 1, "int": 2, "long": 3}
NUMERIC = {"short", "int", "long", "float", "double"}
GEOMETRY = {"point", "circle", "polygon"}
REGION_XTYPE = "adql:REGION"


@dataclass(slots=True)
class Typed:
    """A compiled value: SQL plus what the result FIELD needs to say about it."""

    sql: str
    datatype: str  # VOTable datatype, or "null" for a bare NULL
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
    name: str | None = None  # the natural output name (column or function name)
    const: bool = True  # no column references inside
    literal: object = None  # the Python value of a numeric/string literal
    predicate: str | None = None  # boolean SQL for 0/1-valued functions (CONTAINS…)
    distance: tuple[Typed, Typed] | None = None  # the points of a DISTANCE
    vertices: list[tuple[float, float]] | None = None  # literal polygon vertices (deg)
    lonlat: tuple[str, str] | None = None  # radian SQL of a POINT's coordinates
    aggregate: bool = False
    # (column SQL, SQL of its indexed bounding circle) for a geometry column declared
    # with a bound (tap_schema.model.Column.bound); valid while ``sql`` is that column.
    bound: tuple[str, str] | None = None

    @property
    def is_numeric(self) -> bool:
        return self.datatype in NUMERIC and self.xtype is None

    @property
    def is_string(self) -> bool:
        return self.datatype in ("char", "unicodeChar") and self.xtype is None

    @property
    def bounding_circle(self) -> str | None:
        """SQL of an indexed circle holding this geometry (tap_schema.model.Column.bound)."""
        if self.bound is not None and self.bound[0] == self.sql:
            return self.bound[1]
        return None

    @property
    def geometry(self) -> str | None:
        # ObsCore's s_region is published as adql:REGION (STC-S text) but stored
        # as a pgSphere spoly: in expressions it is a polygon.
        if self.xtype == REGION_XTYPE:
            return "polygon"
        return self.xtype if self.xtype in GEOMETRY else None

    @property
    def kind(self) -> str:
        """What a message calls the type of this value."""
        return self.xtype or self.datatype


def type_family(t: Typed) -> str:
    """The values PostgreSQL can mix in one column (UNION) or compare: numbers, strings,
    timestamps, or one kind of geometry."""
    if t.is_numeric:
        return "number"
    if t.is_string:
        return "string"
    return t.geometry or t.kind


_PG_TYPES = {"short": "smallint", "int": "integer", "long": "bigint", "float": "real",
             "double": "double precision"}
PG_SHAPES = {"point": "spoint", "circle": "scircle", "polygon": "spoly"}


def pg_type(t: Typed, geometry_as_text: bool = False) -> str:
    """The PostgreSQL type of a value, for a CAST that gives a NULL its type."""
    if t.geometry:
        return "text" if geometry_as_text else PG_SHAPES[t.geometry]
    if t.xtype == "timestamp":
        return "timestamp"
    return _PG_TYPES.get(t.datatype, "text")


def typed_null(t: Typed, pg: str, datatype: str) -> Typed:
    """A bare NULL argument typed for the function (PostgreSQL cannot pick an overload
    for ``unknown``)."""
    if t.datatype != "null":
        return t
    return Typed(f"CAST(NULL AS {pg})", datatype, "*" if datatype == "char" else None)


def number_type(value: object) -> str:
    """The VOTable type of a numeric literal: int while it fits, then long, else double."""
    if isinstance(value, int):
        return "int" if -(2**31) <= value < 2**31 else "long"
    return "double"


def wider(a: str, b: str) -> str:
    """The type of an arithmetic result: the wider integer, else double."""
    if a in INTEGRAL and b in INTEGRAL:
        return a if INTEGRAL[a] >= INTEGRAL[b] else b
    return "double"


def as_double(t: Typed) -> str:
    """The SQL of a numeric value as double precision (numeric literals would stay numeric)."""
    if t.datatype == "double":
        return t.sql
    return f"CAST({t.sql} AS double precision)"


def need_number(t: Typed, what: str, pos: n.Pos) -> None:
    if not (t.is_numeric or t.datatype == "null"):
        raise AdqlError(f"{what} needs a number, not a {t.kind} value", pos.line, pos.column)


def need_string(t: Typed, what: str, pos: n.Pos) -> None:
    if not (t.is_string or t.datatype == "null"):
        raise AdqlError(f"{what} needs a string, not a {t.kind} value", pos.line, pos.column)


def need_geometry(t: Typed, what: str, pos: n.Pos, *kinds: str) -> str:
    """The geometry kind of ``t`` (one of ``kinds`` if given); a NULL counts as the first."""
    kind = t.geometry
    if t.datatype == "null":
        return kinds[0] if kinds else "point"
    if kind is None or (kinds and kind not in kinds):
        want = " or ".join(k.upper() for k in kinds) if kinds else "a geometry"
        raise AdqlError(f"{what} needs {want} here, not a {t.kind} value", pos.line,
                        pos.column)
    return kind


def refuse_aggregate_args(what: str, pos: n.Pos, args: list[Typed]) -> None:
    """For functions written as a sub-SELECT (BOX and POLYGON over expressions, CENTROID
    of such a polygon, ivo_healpix_index): an aggregate in there would belong to the
    sub-SELECT (COUNT(*) over one row) or be refused by PostgreSQL."""
    if any(a.aggregate for a in args):
        raise AdqlError(f"{what} cannot take an aggregate (COUNT, AVG…) as an argument; "
                        "compute it in a derived table first: FROM (SELECT AVG(…) AS a …) AS t",
                        pos.line, pos.column)


def check_arity(name: str, pos: n.Pos, args: list[Typed], *counts: int) -> None:
    if len(args) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise AdqlError(f"{name} takes {want} argument{'s' if counts != (1,) else ''}, "
                        f"not {len(args)}", pos.line, pos.column)
