"""ADQL geometry functions over typed arguments → pgSphere SQL.

The expression compiler compiles the arguments and calls :func:`call`; this layer
knows the shapes (literal ones are computed in Python by :mod:`geometry` and bound
as one pgSphere value), the predicates (with the bounding-circle index trick of
``tap_schema.model.Column.bound``) and the functions reading geometries.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from vo_service.adql import geometry as geo
from vo_service.adql import nodes as n
from vo_service.adql.errors import AdqlError
from vo_service.adql.state import State
from vo_service.adql.typed import (
    PG_SHAPES,
    Typed,
    check_arity,
    need_geometry,
    need_number,
    refuse_aggregate_args,
)

FUNCTIONS = frozenset({"POINT", "CIRCLE", "BOX", "POLYGON", "AREA", "CENTROID", "CONTAINS",
                       "INTERSECTS", "COORD1", "COORD2", "COORDSYS", "DISTANCE", "REGION"})


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


def coordsys_stripped(e: n.Call) -> list[n.Expr]:
    """The arguments of a geometry constructor without its optional leading
    coordinate-system literal, which must name ICRS (this service's only frame)."""
    args = list(e.args)
    if e.name in ("POINT", "CIRCLE", "BOX", "POLYGON") and args and isinstance(
            args[0], n.String | n.Null):
        minimum = {"POINT": 3, "CIRCLE": 3, "BOX": 4, "POLYGON": 4}[e.name]
        if len(args) >= minimum:
            first = args.pop(0)
            problem = geo.check_coordsys(first.value if isinstance(first, n.String) else None)
            if problem:
                raise AdqlError(problem, first.pos.line, first.pos.column)
    return args


def _literal(t: Typed) -> float | None:
    """The value of a numeric literal argument, else None."""
    value = t.literal
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return float(value)
    return None


def _refuse(problem: str | None, pos: n.Pos) -> None:
    if problem is not None:
        raise AdqlError(problem, pos.line, pos.column)


def point(lon: Typed, lat: Typed, pos: n.Pos) -> Typed:
    """POINT from two numbers in degrees; a literal latitude must lie in [-90, 90]."""
    if (value := _literal(lat)) is not None:
        _refuse(geo.check_latitude(value), pos)
    lon_sql, lat_sql = f"radians({lon.sql})", f"radians({lat.sql})"
    return Typed(f"spoint({lon_sql}, {lat_sql})", "double", "*", "point", name="point",
                 const=lon.const and lat.const, lonlat=(lon_sql, lat_sql),
                 aggregate=lon.aggregate or lat.aggregate)


def _lonlat(p: Typed) -> tuple[str, str]:
    return p.lonlat or (f"long({p.sql})", f"lat({p.sql})")


def null_geometry(name: str) -> Typed:
    """A geometry function of a NULL argument is NULL of the function's type
    (a bare NULL would make pgSphere's overloaded operators ambiguous)."""
    if name in ("CONTAINS", "INTERSECTS"):
        return Typed("CAST(NULL AS integer)", "int", name=name.lower(),
                     predicate="CAST(NULL AS boolean)")
    shapes = {"POINT": "point", "CENTROID": "point", "CIRCLE": "circle", "BOX": "polygon",
              "POLYGON": "polygon"}
    if name in shapes:
        pg = PG_SHAPES[shapes[name]]
        return Typed(f"CAST(NULL AS {pg})", "double", "*", shapes[name], name=name.lower())
    if name == "COORDSYS":
        return Typed("CAST(NULL AS text)", "char", "*", name="coordsys")
    return Typed("CAST(NULL AS double precision)", "double", name=name.lower())


def call(e: n.Call, args: list[Typed], state: State) -> Typed:
    """A geometry function (other than REGION) of compiled arguments."""
    name = e.name
    const = all(a.const for a in args)
    agg = any(a.aggregate for a in args)
    if any(a.datatype == "null" for a in args):
        return null_geometry(name)
    if name == "POINT":
        check_arity(name, e.pos, args, 2)
        for a in args:
            need_number(a, name, e.pos)
        return point(args[0], args[1], e.pos)
    if name == "CIRCLE":
        return _circle(e, args, const, agg)
    if name == "BOX":
        return _box(e, args, state)
    if name == "POLYGON":
        return _polygon(e, args, state)
    if name in ("CONTAINS", "INTERSECTS"):
        check_arity(name, e.pos, args, 2)
        a, b = args
        ka, kb = need_geometry(a, name, e.pos), need_geometry(b, name, e.pos)
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
        check_arity(name, e.pos, args, 2, 4)
        if len(args) == 4:
            for a in args:
                need_number(a, name, e.pos)
            p1, p2 = point(args[0], args[1], e.pos), point(args[2], args[3], e.pos)
        else:
            for a in args:
                need_geometry(a, name, e.pos, "point")
            p1, p2 = args
        return Typed(f"degrees({p1.sql} <-> {p2.sql})", "double", unit="deg",
                     name="distance", const=const, distance=(p1, p2), aggregate=agg)
    check_arity(name, e.pos, args, 1)
    g = args[0]
    if name in ("COORD1", "COORD2"):
        need_geometry(g, name, e.pos, "point")
        fn = "long" if name == "COORD1" else "lat"
        return Typed(f"degrees({fn}({g.sql}))", "double", unit="deg", name=name.lower(),
                     const=const, aggregate=agg)
    kind = need_geometry(g, name, e.pos)
    if name == "COORDSYS":
        return Typed(f"CAST({state.bind('ICRS')} AS text)", "char", "*", name="coordsys",
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
        sql = f"CAST({state.bind(geo.spoint_text(*geo.vertex_centroid(g.vertices)))} AS spoint)"
    else:
        refuse_aggregate_args(name, e.pos, args)
        sql = geo.polygon_centroid_sql(g.sql)
    return Typed(sql, "double", "*", "point", name="centroid", const=const, aggregate=agg)


def _circle(e: n.Call, args: list[Typed], const: bool, agg: bool) -> Typed:
    check_arity(e.name, e.pos, args, 2, 3)
    if len(args) == 3:
        for a in args:
            need_number(a, e.name, e.pos)
        center = point(args[0], args[1], e.pos)
    else:
        need_geometry(args[0], e.name, e.pos, "point")
        need_number(args[1], e.name, e.pos)
        center = args[0]
    radius = args[-1]
    if (value := _literal(radius)) is not None:
        _refuse(geo.check_radius(value), e.pos)
    if center.const and value is not None:
        sql = f"scircle({center.sql}, radians({radius.sql}))"
    else:
        # pgSphere fails on a radius outside [0, 90] degrees with an internal error
        # (SQLSTATE XX000) that stops the whole query; SAFE_CIRCLE makes such a circle
        # NULL instead (and one with a NaN radius), and, being LEAKPROOF, lets a join on
        # it (an upload cross-match) use the spatial index under row-level security.
        sql = f"{geo.SAFE_CIRCLE}({center.sql}, radians({radius.sql}))"
    return Typed(sql, "double", "*", "circle", name="circle", const=const, aggregate=agg)


def region(e: n.Call, state: State) -> Typed:
    """REGION of an STC-S literal, computed here and bound as one pgSphere value."""
    if len(e.args) != 1 or not isinstance(e.args[0], n.String):
        raise AdqlError("REGION takes one string literal (STC-S)", e.pos.line, e.pos.column)
    try:
        shape, v = geo.parse_stcs(e.args[0].value)
    except ValueError as exc:
        raise AdqlError(str(exc), e.pos.line, e.pos.column) from None
    _refuse(geo.check_shape("POINT" if shape == "POSITION" else shape, v), e.pos)
    if shape == "POSITION":
        return Typed(f"CAST({state.bind(geo.spoint_text(*v))} AS spoint)", "double", "*",
                     "point", name="region")
    if shape == "CIRCLE":
        return Typed(f"CAST({state.bind(geo.scircle_text(*v))} AS scircle)", "double", "*",
                     "circle", name="region")
    vertices = geo.box_vertices(*v) if shape == "BOX" else list(
        zip(v[::2], v[1::2], strict=True))
    return Typed(f"CAST({state.bind(geo.spoly_text(vertices))} AS spoly)", "double", "*",
                 "polygon", name="region", vertices=vertices)


def _box(e: n.Call, args: list[Typed], state: State) -> Typed:
    check_arity(e.name, e.pos, args, 3, 4)
    const = all(a.const for a in args)
    sizes = args[-2:]
    for a in sizes:
        need_number(a, "BOX", e.pos)
    if len(args) == 4:
        for a in args[:2]:
            need_number(a, "BOX", e.pos)
        literals = [_literal(a) for a in args]
        if all(v is not None for v in literals):
            lon, lat, w, h = (v for v in literals if v is not None)
            _refuse(geo.check_shape("BOX", [lon, lat, w, h]), e.pos)
            vertices = geo.box_vertices(lon, lat, w, h)
            return Typed(f"CAST({state.bind(geo.spoly_text(vertices))} AS spoly)", "double",
                         "*", "polygon", name="box", const=True, vertices=vertices)
        lon_sql, lat_sql = f"radians({args[0].sql})", f"radians({args[1].sql})"
    else:
        need_geometry(args[0], e.name, e.pos, "point")
        lon_sql, lat_sql = _lonlat(args[0])
    refuse_aggregate_args(e.name, e.pos, args)
    return Typed(geo.box_sql(lon_sql, lat_sql, sizes[0].sql, sizes[1].sql), "double", "*",
                 "polygon", name="box", const=const)


def _polygon(e: n.Call, args: list[Typed], state: State) -> Typed:
    const = all(a.const for a in args)
    if args and args[0].geometry == "point":
        if len(args) < 3:
            raise AdqlError("POLYGON needs at least three vertices", e.pos.line, e.pos.column)
        for a in args:
            need_geometry(a, e.name, e.pos, "point")
        refuse_aggregate_args(e.name, e.pos, args)
        return Typed(geo.polygon_sql([a.sql for a in args]), "double", "*", "polygon",
                     name="polygon", const=const)
    if len(args) < 6 or len(args) % 2:
        raise AdqlError("POLYGON needs at least three vertices: an even number (≥ 6) of "
                        "coordinates or three or more points", e.pos.line, e.pos.column)
    for a in args:
        need_number(a, "POLYGON", e.pos)
    literals = [_literal(a) for a in args]
    if all(v is not None for v in literals):
        values = [v for v in literals if v is not None]
        _refuse(geo.check_shape("POLYGON", values), e.pos)
        vertices = list(zip(values[::2], values[1::2], strict=True))
        return Typed(f"CAST({state.bind(geo.spoly_text(vertices))} AS spoly)", "double",
                     "*", "polygon", name="polygon", const=True, vertices=vertices)
    refuse_aggregate_args(e.name, e.pos, args)
    points = [point(args[i], args[i + 1], e.pos).sql for i in range(0, len(args), 2)]
    return Typed(geo.polygon_sql(points), "double", "*", "polygon", name="polygon",
                 const=const)


def cast(e: n.Cast, t: Typed, state: State) -> Typed:
    """CAST of a DALI string literal (or NULL) to POINT, CIRCLE or POLYGON."""
    if t.datatype == "null":
        pg = PG_SHAPES[e.target.lower()]
        return Typed(f"CAST(NULL AS {pg})", "double", "*", e.target.lower())
    if not isinstance(t.literal, str):
        raise AdqlError(f"CAST to {e.target} needs a string literal in DALI form",
                        e.pos.line, e.pos.column)
    try:
        values = [float(v) for v in t.literal.split()]
    except ValueError:
        values = []
    wanted = {"POINT": 2, "CIRCLE": 3}.get(e.target)
    if len(values) == wanted or (wanted is None and len(values) >= 6 and len(values) % 2 == 0):
        _refuse(geo.check_shape(e.target, values), e.pos)
    if e.target == "POINT" and len(values) == 2:
        return Typed(f"CAST({state.bind(geo.spoint_text(*values))} AS spoint)", "double",
                     "*", "point")
    if e.target == "CIRCLE" and len(values) == 3:
        return Typed(f"CAST({state.bind(geo.scircle_text(*values))} AS scircle)", "double",
                     "*", "circle")
    if e.target == "POLYGON" and len(values) >= 6 and len(values) % 2 == 0:
        vertices = list(zip(values[::2], values[1::2], strict=True))
        return Typed(f"CAST({state.bind(geo.spoly_text(vertices))} AS spoly)", "double",
                     "*", "polygon", vertices=vertices)
    raise AdqlError(f"{t.literal!r} is not a DALI {e.target.lower()}", e.pos.line,
                    e.pos.column)
