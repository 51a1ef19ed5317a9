"""Expressions and search conditions → typed PostgreSQL/pgSphere SQL fragments.

Every fragment carries the VOTable type and descriptive metadata of its value so
that the select list yields the result FIELDs.  Literals are bound through
:meth:`ExpressionCompiler.bind`; SQL text is made only of constants written here
and of identifiers the caller resolved from the metadata.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from vo_service.adql import geometry as geo
from vo_service.adql import nodes as n
from vo_service.adql.errors import AdqlError

if TYPE_CHECKING:
    from vo_service.adql.compiler import Scope

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


def _within(a: Typed, b: Typed) -> str:
    """``a`` inside ``b``; through a bounding circle's index where one side has one.

    a ⊂ b implies a ⊂ circle(b), and a ⊂ b ⊂ circle(a) implies circle(a) && b; both
    tests are NULL exactly when the exact one is (Column.bound), so adding them never
    changes a result.
    """
    exact = f"{a.sql} @ {b.sql}"
    if (circle := b.bounding_circle) is not None:
        return f"({a.sql} @ {circle} AND {exact})"
    if (circle := a.bounding_circle) is not None:
        return f"({circle} && {b.sql} AND {exact})"
    return f"({exact})"


def _overlap(a: Typed, b: Typed) -> str:
    """``a`` and ``b`` overlap; through the bounding circles' index as in `_within`."""
    exact = f"{a.sql} && {b.sql}"
    circle_a, circle_b = a.bounding_circle, b.bounding_circle
    if circle_a is None and circle_b is None:
        return f"({exact})"
    return f"({circle_a or a.sql} && {circle_b or b.sql} AND {exact})"


def _pos(e: n.Expr) -> n.Pos:
    return e.pos


def _line_column(e: n.Expr) -> tuple[int | None, int | None]:
    return e.pos.line, e.pos.column


def _typed_null(t: Typed, pg: str, datatype: str) -> Typed:
    """A bare NULL argument typed for the function (PostgreSQL cannot pick an overload
    for ``unknown``)."""
    if t.datatype != "null":
        return t
    return Typed(f"CAST(NULL AS {pg})", datatype, "*" if datatype == "char" else None)


def _number_type(value: object) -> str:
    if isinstance(value, int):
        return "int" if -(2**31) <= value < 2**31 else "long"
    return "double"


def _wider(a: str, b: str) -> str:
    if a in INTEGRAL and b in INTEGRAL:
        return a if INTEGRAL[a] >= INTEGRAL[b] else b
    return "double"


def _dbl(t: Typed) -> str:
    """The SQL of a numeric value as double precision (numeric literals would stay numeric)."""
    if t.datatype == "double":
        return t.sql
    return f"CAST({t.sql} AS double precision)"


@functools.cache
def unit_factor(source: str, target: str) -> float:
    """Multiplicative factor between two VOUnits (astropy, imported only when needed)."""
    from astropy import units as u

    try:
        src = u.Unit(source, format="vounit")
    except ValueError:
        src = u.Unit(source)
    dst = u.Unit(target, format="vounit")
    return float(src.to(dst))


_MATH_1 = {  # ADQL name -> PostgreSQL function on double precision
    "ACOS": "acos", "ASIN": "asin", "ATAN": "atan", "COS": "cos", "COT": "cot",
    "SIN": "sin", "TAN": "tan", "DEGREES": "degrees", "RADIANS": "radians",
    "EXP": "exp", "LOG": "ln", "LOG10": "log", "SQRT": "sqrt", "CEILING": "ceil",
    "FLOOR": "floor",
}
_COMPARE_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "<>": "<>"}


class ExpressionCompiler:
    """Mixin of :class:`vo_service.adql.compiler.Compiler` for value expressions."""

    params: dict[str, object]

    # Hooks the query compiler provides.
    def resolve_column(self, ref: n.ColumnRef, scope: Scope) -> Typed:
        raise NotImplementedError

    def subquery(self, query: n.SelectExpression, scope: Scope) -> tuple[str, list[Typed]]:
        raise NotImplementedError

    def bind(self, value: object) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    # --- values ----------------------------------------------------------------

    def expr(self, e: n.Expr, scope: Scope) -> Typed:
        if isinstance(e, n.ColumnRef):
            return self.resolve_column(e, scope)
        if isinstance(e, n.Number):
            if isinstance(e.value, int):
                return Typed(self.bind(e.value), _number_type(e.value), literal=e.value)
            # Decimal literals are doubles in ADQL, not PostgreSQL numerics.
            return Typed(f"CAST({self.bind(e.value)} AS double precision)", "double",
                         literal=e.value)
        if isinstance(e, n.String):
            return Typed(self.bind(e.value), "char", "*", literal=e.value)
        if isinstance(e, n.Null):
            return Typed("NULL", "null")
        if isinstance(e, n.Binary):
            return self._binary(e, scope)
        if isinstance(e, n.Unary):
            t = _typed_null(self.expr(e.operand, scope), "double precision", "double")
            self._need_number(t, "unary minus", e.pos)
            return replace(t, sql=f"(-{t.sql})", name=None, literal=None, predicate=None,
                           ucd=None)
        if isinstance(e, n.Call):
            return self._call(e, scope)
        if isinstance(e, n.Aggregate):
            return self._aggregate(e, scope)
        if isinstance(e, n.UdfCall):
            return self._udf(e, scope)
        if isinstance(e, n.Cast):
            return self._cast(e, scope)
        if isinstance(e, n.Coalesce):
            return self._coalesce(e, scope)
        return self._in_unit(e, scope)

    @staticmethod
    def _need_number(t: Typed, what: str, pos: n.Pos) -> None:
        if not (t.is_numeric or t.datatype == "null"):
            raise AdqlError(f"{what} needs a number, not a {t.xtype or t.datatype} value",
                            pos.line, pos.column)

    @staticmethod
    def _need_string(t: Typed, what: str, pos: n.Pos) -> None:
        if not (t.is_string or t.datatype == "null"):
            raise AdqlError(f"{what} needs a string, not a {t.xtype or t.datatype} value",
                            pos.line, pos.column)

    def _binary(self, e: n.Binary, scope: Scope) -> Typed:
        # Long chains (a + b + c …) are left-deep: walk the spine with a loop, not
        # recursion, so that only real nesting counts against the depth limit.
        spine: list[n.Binary] = [e]
        while isinstance(spine[-1].left, n.Binary):
            spine.append(spine[-1].left)
        acc = self.expr(spine[-1].left, scope)
        for node in reversed(spine):
            acc = self._binary_step(node, acc, self.expr(node.right, scope))
        return acc

    def _binary_step(self, e: n.Binary, left: Typed, right: Typed) -> Typed:
        if e.op == "||":
            left, right = _typed_null(left, "text", "char"), _typed_null(right, "text", "char")
        elif left.datatype == "null" or right.datatype == "null":
            left = _typed_null(left, "double precision", "double")
            right = _typed_null(right, "double precision", "double")
        const = left.const and right.const
        agg = left.aggregate or right.aggregate
        if e.op == "||":
            for t in (left, right):
                if t.geometry:
                    raise AdqlError("|| needs strings", e.pos.line, e.pos.column)
            parts = [t.sql if t.is_string else f"CAST({t.sql} AS text)" for t in (left, right)]
            return Typed(f"({parts[0]} || {parts[1]})", "char", "*", const=const,
                         aggregate=agg)
        self._need_number(left, f"operator {e.op}", e.pos)
        self._need_number(right, f"operator {e.op}", e.pos)
        unit = left.unit if e.op in "+-" and left.unit == right.unit else None
        datatype = _wider(left.datatype if left.datatype != "null" else "int",
                          right.datatype if right.datatype != "null" else "int")
        return Typed(f"({left.sql} {e.op} {right.sql})", datatype, unit=unit, const=const,
                     aggregate=agg)

    def _args(self, e: n.Call | n.UdfCall, scope: Scope) -> list[Typed]:
        return [self.expr(a, scope) for a in e.args]

    def _arity(self, e: n.Call, args: list[Typed], *counts: int) -> None:
        if len(args) not in counts:
            want = " or ".join(str(c) for c in counts)
            raise AdqlError(f"{e.name} takes {want} argument{'s' if counts != (1,) else ''}, "
                            f"not {len(args)}", e.pos.line, e.pos.column)

    def _call(self, e: n.Call, scope: Scope) -> Typed:
        name = e.name
        if name in ("POINT", "CIRCLE", "BOX", "POLYGON", "AREA", "CENTROID", "CONTAINS",
                    "INTERSECTS", "COORD1", "COORD2", "COORDSYS", "DISTANCE", "REGION"):
            return self._geometry(e, scope)
        args = self._args(e, scope)
        const = all(a.const for a in args)
        agg = any(a.aggregate for a in args)
        if name in ("LOWER", "UPPER"):
            args = [_typed_null(a, "text", "char") for a in args]
            self._arity(e, args, 1)
            self._need_string(args[0], name, e.pos)
            return Typed(f"{name.lower()}({args[0].sql})", "char", "*", const=const,
                         name=name.lower(), aggregate=agg)
        for a in args:
            self._need_number(a, name, e.pos)
        args = [_typed_null(a, "double precision", "double") for a in args]
        sql: str
        datatype = "double"
        unit = None
        if name in _MATH_1:
            self._arity(e, args, 1)
            sql = f"{_MATH_1[name]}({_dbl(args[0])})"
        elif name == "ABS":
            self._arity(e, args, 1)
            sql, datatype, unit = f"abs({args[0].sql})", args[0].datatype, args[0].unit
            if datatype == "null":
                datatype = "double"
        elif name == "ATAN2":
            self._arity(e, args, 2)
            sql = f"atan2({_dbl(args[0])}, {_dbl(args[1])})"
        elif name == "POWER":
            self._arity(e, args, 2)
            sql = f"power({_dbl(args[0])}, {_dbl(args[1])})"
        elif name == "PI":
            self._arity(e, args, 0)
            sql = "pi()"
        elif name == "RAND":
            self._arity(e, args, 0, 1)
            sql, const = "random()", False
        elif name == "MOD":
            self._arity(e, args, 2)
            if all(a.datatype in INTEGRAL for a in args):
                sql, datatype = f"mod({args[0].sql}, {args[1].sql})", _wider(
                    args[0].datatype, args[1].datatype)
            else:
                sql = (f"CAST(mod(CAST({args[0].sql} AS numeric), CAST({args[1].sql} AS "
                       "numeric)) AS double precision)")
        elif name in ("ROUND", "TRUNCATE"):
            self._arity(e, args, 1, 2)
            fn = "round" if name == "ROUND" else "trunc"
            if len(args) == 1:  # numeric rounding: halves go away from zero
                sql = f"CAST({fn}(CAST({args[0].sql} AS numeric)) AS double precision)"
            else:
                if not isinstance(args[1].literal, int):
                    raise AdqlError(f"the second argument of {name} must be an integer literal",
                                    e.pos.line, e.pos.column)
                sql = (f"CAST({fn}(CAST({args[0].sql} AS numeric), {args[1].sql}) "
                       "AS double precision)")
            unit = args[0].unit
        else:  # pragma: no cover - the grammar names no other function
            raise AdqlError(f"unknown function {name}", e.pos.line, e.pos.column)
        return Typed(sql, datatype, unit=unit, const=const, name=name.lower(), aggregate=agg)

    def _aggregate(self, e: n.Aggregate, scope: Scope) -> Typed:
        if e.arg is None:
            return Typed("count(*)", "long", name="count", const=False, aggregate=True)
        arg = _typed_null(self.expr(e.arg, scope), "double precision", "double")
        distinct = "DISTINCT " if e.distinct else ""
        inner = f"{distinct}{arg.sql}"
        name = e.name.lower()
        if e.name == "COUNT":
            return Typed(f"count({inner})", "long", name=name, const=False, aggregate=True)
        if arg.geometry:
            raise AdqlError(f"{e.name} cannot aggregate {arg.geometry} values", e.pos.line,
                            e.pos.column)
        if e.name in ("MIN", "MAX"):
            return replace(arg, sql=f"{name}({inner})", name=name, const=False, literal=None,
                           predicate=None, aggregate=True)
        self._need_number(arg, e.name, e.pos)
        if e.name == "AVG":
            return Typed(f"CAST(avg({inner}) AS double precision)", "double", unit=arg.unit,
                         name=name, const=False, aggregate=True)
        if arg.datatype in INTEGRAL:
            return Typed(f"CAST(sum({inner}) AS bigint)", "long", unit=arg.unit, name=name,
                         const=False, aggregate=True)
        return Typed(f"sum({inner})", arg.datatype, unit=arg.unit, name=name, const=False,
                     aggregate=True)

    def _udf(self, e: n.UdfCall, scope: Scope) -> Typed:
        from vo_service.adql.udfs import REGISTRY

        udf = REGISTRY.get(e.name)
        if udf is None:
            raise AdqlError(
                f"unknown function {e.name}: ADQL functions and the user-defined functions "
                "listed in the service capabilities are available", e.pos.line, e.pos.column)
        args = self._args(e, scope)
        if len(args) != len(udf.arguments):
            raise AdqlError(f"{e.name} takes {len(udf.arguments)} arguments, not {len(args)}",
                            e.pos.line, e.pos.column)
        for arg, kind in zip(args, udf.arguments, strict=True):
            if kind == "number":
                self._need_number(arg, e.name, e.pos)
            elif kind == "string":
                self._need_string(arg, e.name, e.pos)
            elif kind == "timestamp" and not (arg.xtype == "timestamp" or arg.is_string
                                              or arg.datatype == "null"):
                raise AdqlError(f"{e.name} needs a timestamp", e.pos.line, e.pos.column)
        if udf.literal_range is not None:
            index, low, high = udf.literal_range
            value = args[index].literal
            if isinstance(value, int | float | Decimal) and not low <= value <= high:
                raise AdqlError(f"argument {index + 1} of {e.name} must lie between {low} and "
                                f"{high}", e.pos.line, e.pos.column)
        nulls = {"number": ("double precision", "double"), "timestamp": ("timestamp", "char")}
        args = [_typed_null(a, *nulls.get(kind, ("text", "char")))
                for a, kind in zip(args, udf.arguments, strict=True)]
        result = udf.compile([a.sql for a in args])
        result.const = all(a.const for a in args) and not udf.aggregate
        result.aggregate = udf.aggregate or any(a.aggregate for a in args)
        result.name = e.name
        return result

    def _cast(self, e: n.Cast, scope: Scope) -> Typed:
        t = self.expr(e.operand, scope)
        target = e.target
        if target in ("POINT", "CIRCLE", "POLYGON"):
            return self._cast_geometry(e, t)
        if t.geometry:
            raise AdqlError(f"a {t.geometry} cannot be cast to {target}", e.pos.line,
                            e.pos.column)
        if target in ("CHAR", "VARCHAR"):
            if e.length is None:
                return Typed(f"CAST({t.sql} AS text)", "char", "*", const=t.const)
            fn = "rpad" if target == "CHAR" else "left"
            arraysize = str(e.length) if target == "CHAR" else f"{e.length}*"
            return Typed(f"{fn}(CAST({t.sql} AS text), {self.bind(e.length)})", "char",
                         arraysize, const=t.const)
        if target == "TIMESTAMP":
            if not (t.is_string or t.xtype == "timestamp" or t.datatype == "null"):
                raise AdqlError("only strings and timestamps can be cast to TIMESTAMP",
                                e.pos.line, e.pos.column)
            return Typed(f"CAST({t.sql} AS timestamp)", "char", "*", "timestamp",
                         const=t.const)
        if not (t.is_numeric or t.is_string or t.datatype == "null"):
            raise AdqlError(f"a {t.xtype or t.datatype} value cannot be cast to {target}",
                            e.pos.line, e.pos.column)
        pg, datatype = {
            "SMALLINT": ("smallint", "short"), "INTEGER": ("integer", "int"),
            "BIGINT": ("bigint", "long"), "REAL": ("real", "float"),
            "DOUBLE": ("double precision", "double"),
        }[target]
        return Typed(f"CAST({t.sql} AS {pg})", datatype, unit=t.unit, const=t.const)

    def _cast_geometry(self, e: n.Cast, t: Typed) -> Typed:
        if t.datatype == "null":
            pg = {"POINT": "spoint", "CIRCLE": "scircle", "POLYGON": "spoly"}[e.target]
            return Typed(f"CAST(NULL AS {pg})", "double", "*", e.target.lower())
        if not isinstance(t.literal, str):
            raise AdqlError(f"CAST to {e.target} needs a string literal in DALI form",
                            e.pos.line, e.pos.column)
        try:
            values = [float(v) for v in t.literal.split()]
        except ValueError:
            values = []
        if e.target == "POINT" and len(values) == 2:
            return Typed(f"CAST({self.bind(geo.spoint_text(*values))} AS spoint)", "double",
                         "*", "point")
        if e.target == "CIRCLE" and len(values) == 3:
            return Typed(f"CAST({self.bind(geo.scircle_text(*values))} AS scircle)", "double",
                         "*", "circle")
        if e.target == "POLYGON" and len(values) >= 6 and len(values) % 2 == 0:
            vertices = list(zip(values[::2], values[1::2], strict=True))
            self._check_polygon(vertices, e.pos)
            return Typed(f"CAST({self.bind(geo.spoly_text(vertices))} AS spoly)", "double",
                         "*", "polygon", vertices=vertices)
        raise AdqlError(f"{t.literal!r} is not a DALI {e.target.lower()}", e.pos.line,
                        e.pos.column)

    def _coalesce(self, e: n.Coalesce, scope: Scope) -> Typed:
        args = [self.expr(a, scope) for a in e.args]
        typed = [a for a in args if a.datatype != "null"]
        first = typed[0] if typed else args[0]
        for a in typed[1:]:
            same = (a.is_numeric and first.is_numeric) or (a.xtype == first.xtype and (
                a.datatype == first.datatype or (a.is_string and first.is_string)))
            if not same:
                raise AdqlError("all arguments of COALESCE must have the same type",
                                e.pos.line, e.pos.column)
        datatype = first.datatype
        for a in typed[1:]:
            if a.is_numeric:
                datatype = _wider(datatype, a.datatype)
        if datatype == "null":
            datatype = "char"
        return Typed(f"COALESCE({', '.join(a.sql for a in args)})", datatype, first.arraysize,
                     first.xtype, unit=first.unit, ucd=first.ucd, name="coalesce",
                     const=all(a.const for a in args),
                     aggregate=any(a.aggregate for a in args))

    def _in_unit(self, e: n.InUnit, scope: Scope) -> Typed:
        t = self.expr(e.operand, scope)
        self._need_number(t, "IN_UNIT", e.pos)
        if not t.unit:
            raise AdqlError("IN_UNIT needs a value with a known unit (a column with a unit)",
                            e.pos.line, e.pos.column)
        if not e.unit.strip():
            raise AdqlError("IN_UNIT cannot convert into a unitless value", e.pos.line,
                            e.pos.column)
        try:
            factor = unit_factor(t.unit, e.unit)
        except ValueError as exc:
            raise AdqlError(f"cannot convert {t.unit!r} to {e.unit!r}: {exc}",
                            e.pos.line, e.pos.column) from None
        return Typed(f"({_dbl(t)} * {self.bind(factor)})", "double", unit=e.unit, ucd=t.ucd,
                     const=t.const, name=t.name, aggregate=t.aggregate)

    # --- geometry ----------------------------------------------------------

    def _geo_args(self, e: n.Call, scope: Scope) -> list[Typed]:
        args = list(e.args)
        if e.name in ("POINT", "CIRCLE", "BOX", "POLYGON") and args and isinstance(
                args[0], n.String | n.Null):
            minimum = {"POINT": 3, "CIRCLE": 3, "BOX": 4, "POLYGON": 4}[e.name]
            if len(args) >= minimum:
                first = args.pop(0)
                problem = geo.check_coordsys(first.value if isinstance(first, n.String)
                                             else None)
                if problem:
                    raise AdqlError(problem, first.pos.line, first.pos.column)
        return [self.expr(a, scope) for a in args]

    def _need_geometry(self, t: Typed, e: n.Call, *kinds: str) -> str:
        kind = t.geometry
        if t.datatype == "null":
            return kinds[0] if kinds else "point"
        if kind is None or (kinds and kind not in kinds):
            want = " or ".join(k.upper() for k in kinds) if kinds else "a geometry"
            raise AdqlError(f"{e.name} needs {want} here, not a {t.xtype or t.datatype} value",
                            e.pos.line, e.pos.column)
        return kind

    def _point(self, lon: Typed, lat: Typed) -> Typed:
        lon_sql, lat_sql = f"radians({lon.sql})", f"radians({lat.sql})"
        return Typed(f"spoint({lon_sql}, {lat_sql})", "double", "*", "point", name="point",
                     const=lon.const and lat.const, lonlat=(lon_sql, lat_sql),
                     aggregate=lon.aggregate or lat.aggregate)

    @staticmethod
    def _lonlat(p: Typed) -> tuple[str, str]:
        return p.lonlat or (f"long({p.sql})", f"lat({p.sql})")

    def _geometry(self, e: n.Call, scope: Scope) -> Typed:
        name = e.name
        if name == "REGION":
            return self._region(e)
        args = self._geo_args(e, scope)
        const = all(a.const for a in args)
        agg = any(a.aggregate for a in args)
        if any(a.datatype == "null" for a in args):
            return self._null_geometry(name)
        if name == "POINT":
            self._arity(e, args, 2)
            for a in args:
                self._need_number(a, name, e.pos)
            return self._point(args[0], args[1])
        if name == "CIRCLE":
            self._arity(e, args, 2, 3)
            if len(args) == 3:
                for a in args:
                    self._need_number(a, name, e.pos)
                center = self._point(args[0], args[1])
            else:
                self._need_geometry(args[0], e, "point")
                self._need_number(args[1], name, e.pos)
                center = args[0]
            radius = args[-1]
            if isinstance(radius.literal, int | float | Decimal) and not (
                    0 <= radius.literal <= 90):
                raise AdqlError("a CIRCLE radius must lie between 0 and 90 degrees",
                                e.pos.line, e.pos.column)
            return Typed(f"scircle({center.sql}, radians({radius.sql}))", "double", "*",
                         "circle", name="circle", const=const, aggregate=agg)
        if name == "BOX":
            return self._box(e, args)
        if name == "POLYGON":
            return self._polygon(e, args)
        if name in ("CONTAINS", "INTERSECTS"):
            self._arity(e, args, 2)
            a, b = args
            ka, kb = self._need_geometry(a, e), self._need_geometry(b, e)
            if name == "INTERSECTS" and kb == "point" and ka != "point":
                a, b, ka, kb = b, a, kb, ka
            if ka == "point" and kb == "point":
                pred = f"({a.sql} = {b.sql})"
            elif kb == "point":  # a circle or polygon never lies within a point
                pred = f"(CASE WHEN {a.sql} IS NULL OR {b.sql} IS NULL THEN NULL ELSE false END)"
            elif name == "CONTAINS" or ka == "point":
                pred = _within(a, b)
            else:
                pred = _overlap(a, b)
            return Typed(f"CAST({pred} AS integer)", "int", name=name.lower(), const=const,
                         predicate=pred, aggregate=agg)
        if name == "DISTANCE":
            self._arity(e, args, 2, 4)
            if len(args) == 4:
                for a in args:
                    self._need_number(a, name, e.pos)
                p1, p2 = self._point(args[0], args[1]), self._point(args[2], args[3])
            else:
                for a in args:
                    self._need_geometry(a, e, "point")
                p1, p2 = args
            return Typed(f"degrees({p1.sql} <-> {p2.sql})", "double", unit="deg",
                         name="distance", const=const, distance=(p1, p2), aggregate=agg)
        self._arity(e, args, 1)
        g = args[0]
        if name in ("COORD1", "COORD2"):
            self._need_geometry(g, e, "point")
            fn = "long" if name == "COORD1" else "lat"
            return Typed(f"degrees({fn}({g.sql}))", "double", unit="deg", name=name.lower(),
                         const=const, aggregate=agg)
        kind = self._need_geometry(g, e)
        if name == "COORDSYS":
            return Typed(f"CAST({self.bind('ICRS')} AS text)", "char", "*", name="coordsys",
                         const=True)
        if name == "AREA":
            sql = "CAST(0 AS double precision)" if kind == "point" else \
                f"degrees(degrees(area({g.sql})))"
            return Typed(sql, "double", unit="deg**2", name="area", const=const, aggregate=agg)
        # CENTROID
        if kind == "point":
            return replace(g, name="centroid")
        if kind == "circle":
            sql = f"center({g.sql})"
        elif g.vertices is not None:
            sql = f"CAST({self.bind(geo.spoint_text(*geo.vertex_centroid(g.vertices)))} " \
                "AS spoint)"
        else:
            sql = geo.polygon_centroid_sql(g.sql)
        return Typed(sql, "double", "*", "point", name="centroid", const=const, aggregate=agg)

    @staticmethod
    def _check_polygon(vertices: list[tuple[float, float]], pos: n.Pos) -> None:
        problem = geo.check_polygon(vertices)
        if problem:
            raise AdqlError(problem, pos.line, pos.column)

    @staticmethod
    def _null_geometry(name: str) -> Typed:
        """A geometry function of a NULL argument is NULL of the function's type
        (a bare NULL would make pgSphere's overloaded operators ambiguous)."""
        if name in ("CONTAINS", "INTERSECTS"):
            return Typed("CAST(NULL AS integer)", "int", name=name.lower(),
                         predicate="CAST(NULL AS boolean)")
        shapes = {"POINT": "point", "CENTROID": "point", "CIRCLE": "circle", "BOX": "polygon",
                  "POLYGON": "polygon"}
        if name in shapes:
            pg = {"point": "spoint", "circle": "scircle", "polygon": "spoly"}[shapes[name]]
            return Typed(f"CAST(NULL AS {pg})", "double", "*", shapes[name], name=name.lower())
        if name == "COORDSYS":
            return Typed("CAST(NULL AS text)", "char", "*", name="coordsys")
        return Typed("CAST(NULL AS double precision)", "double", name=name.lower())

    def _region(self, e: n.Call) -> Typed:
        if len(e.args) != 1 or not isinstance(e.args[0], n.String):
            raise AdqlError("REGION takes one string literal (STC-S)", e.pos.line, e.pos.column)
        try:
            shape, v = geo.parse_stcs(e.args[0].value)
        except ValueError as exc:
            raise AdqlError(str(exc), e.pos.line, e.pos.column) from None
        if shape == "POSITION":
            return Typed(f"CAST({self.bind(geo.spoint_text(*v))} AS spoint)", "double", "*",
                         "point", name="region")
        if shape == "CIRCLE":
            return Typed(f"CAST({self.bind(geo.scircle_text(*v))} AS scircle)", "double", "*",
                         "circle", name="region")
        vertices = geo.box_vertices(*v) if shape == "BOX" else list(
            zip(v[::2], v[1::2], strict=True))
        self._check_polygon(vertices, e.pos)
        return Typed(f"CAST({self.bind(geo.spoly_text(vertices))} AS spoly)", "double", "*",
                     "polygon", name="region", vertices=vertices)

    def _box(self, e: n.Call, args: list[Typed]) -> Typed:
        self._arity(e, args, 3, 4)
        const = all(a.const for a in args)
        sizes = args[-2:]
        for a in sizes:
            self._need_number(a, "BOX", e.pos)
        if len(args) == 4:
            for a in args[:2]:
                self._need_number(a, "BOX", e.pos)
            literals = [a.literal for a in args]
            if all(isinstance(v, int | float | Decimal) for v in literals):
                lon, lat, w, h = (float(v) for v in literals)  # type: ignore[arg-type]
                if not (0 < w < 180 and 0 < h < 180):
                    raise AdqlError("BOX width and height must lie between 0 and 180 degrees",
                                    e.pos.line, e.pos.column)
                vertices = geo.box_vertices(lon, lat, w, h)
                self._check_polygon(vertices, e.pos)
                return Typed(f"CAST({self.bind(geo.spoly_text(vertices))} AS spoly)", "double",
                             "*", "polygon", name=e.name.lower(), const=True, vertices=vertices)
            lon_sql, lat_sql = f"radians({args[0].sql})", f"radians({args[1].sql})"
        else:
            self._need_geometry(args[0], e, "point")
            lon_sql, lat_sql = self._lonlat(args[0])
        return Typed(geo.box_sql(lon_sql, lat_sql, sizes[0].sql, sizes[1].sql), "double", "*",
                     "polygon", name="box", const=const)

    def _polygon(self, e: n.Call, args: list[Typed]) -> Typed:
        const = all(a.const for a in args)
        if args and args[0].geometry == "point":
            if len(args) < 3:
                raise AdqlError("POLYGON needs at least three vertices", e.pos.line,
                                e.pos.column)
            for a in args:
                self._need_geometry(a, e, "point")
            return Typed(geo.polygon_sql([a.sql for a in args]), "double", "*", "polygon",
                         name="polygon", const=const)
        if len(args) < 6 or len(args) % 2:
            raise AdqlError("POLYGON needs at least three vertices: an even number (≥ 6) of "
                            "coordinates or three or more points", e.pos.line, e.pos.column)
        for a in args:
            self._need_number(a, "POLYGON", e.pos)
        literals = [a.literal for a in args]
        if all(isinstance(v, int | float | Decimal) for v in literals):
            values = [float(v) for v in literals]  # type: ignore[arg-type]
            vertices = list(zip(values[::2], values[1::2], strict=True))
            self._check_polygon(vertices, e.pos)
            return Typed(f"CAST({self.bind(geo.spoly_text(vertices))} AS spoly)", "double",
                         "*", "polygon", name=e.name.lower(), const=True, vertices=vertices)
        points = [self._point(args[i], args[i + 1]).sql for i in range(0, len(args), 2)]
        return Typed(geo.polygon_sql(points), "double", "*", "polygon", name="polygon",
                     const=const)

    # --- conditions --------------------------------------------------------

    def condition(self, c: n.Condition, scope: Scope) -> str:
        if isinstance(c, n.BoolOp):  # a left-deep chain, walked with a loop
            operands: list[n.Condition] = [c.right]
            left: n.Condition = c.left
            while isinstance(left, n.BoolOp) and left.op == c.op:
                operands.append(left.right)
                left = left.left
            operands.append(left)
            parts = [self.condition(x, scope) for x in reversed(operands)]
            return "(" + f" {c.op} ".join(parts) + ")"
        if isinstance(c, n.Not):
            return f"(NOT {self.condition(c.operand, scope)})"
        if isinstance(c, n.Comparison):
            return self._comparison(c, scope)
        if isinstance(c, n.Between):
            v, lo, hi = (self.expr(x, scope) for x in (c.operand, c.low, c.high))
            if v.geometry or lo.geometry or hi.geometry:
                raise AdqlError("BETWEEN cannot compare geometries", *_line_column(c.operand))
            self._comparable(v, lo, _pos(c.operand))
            self._comparable(v, hi, _pos(c.operand))
            neg = "NOT " if c.negated else ""
            return f"({v.sql} {neg}BETWEEN {lo.sql} AND {hi.sql})"
        if isinstance(c, n.InList):
            v = self.expr(c.operand, scope)
            items = [self.expr(x, scope) for x in c.items]
            for item in items:
                self._comparable(v, item, _pos(c.operand))
            neg = "NOT " if c.negated else ""
            return f"({v.sql} {neg}IN ({', '.join(i.sql for i in items)}))"
        if isinstance(c, n.InQuery):
            v = self.expr(c.operand, scope)
            sql, cols = self.subquery(c.query, scope)
            if len(cols) != 1:
                raise AdqlError("the subquery of IN must select exactly one column",
                                *_line_column(c.operand))
            self._comparable(v, cols[0], _pos(c.operand))
            neg = "NOT " if c.negated else ""
            return f"({v.sql} {neg}IN {sql})"
        if isinstance(c, n.Like):
            v, p = self.expr(c.operand, scope), self.expr(c.pattern, scope)
            for t in (v, p):
                if not (t.is_string or t.datatype == "null"):
                    raise AdqlError("LIKE and ILIKE compare strings", *_line_column(c.operand))
            op = ("NOT " if c.negated else "") + ("ILIKE" if c.case_insensitive else "LIKE")
            return f"({v.sql} {op} {p.sql})"
        if isinstance(c, n.IsNull):
            v = self.expr(c.operand, scope)
            return f"({v.sql} IS {'NOT ' if c.negated else ''}NULL)"
        sql, _ = self.subquery(c.query, scope)
        return f"(EXISTS {sql})"

    @staticmethod
    def _comparable(a: Typed, b: Typed, pos: n.Pos | None) -> None:
        if a.datatype == "null" or b.datatype == "null":
            return
        line, column = (pos.line, pos.column) if pos else (None, None)
        if a.geometry or b.geometry:
            if a.geometry != b.geometry:
                raise AdqlError("geometries can only be compared with geometries of the "
                                "same kind", line, column)
            return
        ok = (a.is_numeric and b.is_numeric) or (a.is_string and b.is_string) or (
            a.xtype == "timestamp" and (b.xtype == "timestamp" or isinstance(b.literal, str))
        ) or (b.xtype == "timestamp" and isinstance(a.literal, str)) or (
            a.datatype == b.datatype and a.xtype == b.xtype)
        if not ok:
            raise AdqlError(f"cannot compare a {a.xtype or a.datatype} value with a "
                            f"{b.xtype or b.datatype} value", line, column)

    def _comparison(self, c: n.Comparison, scope: Scope) -> str:
        left, right = self.expr(c.left, scope), self.expr(c.right, scope)
        op = c.op
        if (left.geometry or right.geometry) and op not in ("=", "<>"):
            raise AdqlError(f"geometries cannot be compared with {op}", c.pos.line,
                            c.pos.column)
        self._comparable(left, right, c.pos)
        # CONTAINS(...) = 1 and friends: use the boolean itself (index-friendly).
        for fn, lit in ((left, right), (right, left)):
            if fn.predicate is not None and lit.literal in (0, 1) and op in ("=", "<>") \
                    and not isinstance(lit.literal, bool):
                truth = (lit.literal == 1) == (op == "=")
                return fn.predicate if truth else f"(NOT {fn.predicate})"
        # DISTANCE(a, b) < r: an index-using containment plus the exact test.
        if right.distance is not None and left.distance is None:
            left, right, op = right, left, _COMPARE_FLIP[op]
        if left.distance is not None and op in ("<", "<=") and isinstance(
                right.literal, int | float | Decimal) and 0 <= right.literal <= 90:
            p1, p2 = left.distance
            if p1.const and not p2.const:
                p1, p2 = p2, p1
            cone = f"({p1.sql} @ scircle({p2.sql}, radians({right.sql})))"
            return f"({cone} AND {left.sql} {op} {right.sql})"
        return f"({left.sql} {op} {right.sql})"
