"""What the row-level policies need from the database superuser: LEAKPROOF geometry.

Under row-level security PostgreSQL evaluates the policy before any user condition
that might leak values of hidden rows (a function that is not LEAKPROOF could raise
an error or a notice showing its arguments).  A consequence is that a user condition
built from non-LEAKPROOF functions cannot be an index condition: an ADQL cone search
``CONTAINS(POINT(s_ra, s_dec), CIRCLE(...)) = 1`` then scans every row instead of
using the GiST index (measured: 0.2 ms → 35-110 ms on 100k rows; grows linearly).

The functions below raise no errors and no notices for any stored values: pgSphere's
containment and overlap tests return a boolean, ``spoint(lon, lat)`` normalises any
pair of doubles, ``radians`` multiplies by a constant smaller than one.  Declaring them
LEAKPROOF therefore reveals nothing and gives the index back.  Constructors that can
reject values (``scircle`` radius checks, ``spoly`` from text) are deliberately not
listed.  Only a superuser may run these statements: the embedded set-up does, an
external database's administrator runs them once (``lick-archive db superuser-sql``).

A circle whose centre comes from another table, as in an upload cross-match
(``CONTAINS(POINT(o.s_ra, o.s_dec), CIRCLE(u.ra, u.dec, r)) = 1``), is built per row
of that table; built by ``scircle``, which may fail, the whole join condition leaks
and PostgreSQL runs it as a filter over every visible row for every uploaded row (a
1,000-position cross-match on 20,000 rows: 6.2 s instead of 17 ms; at ten million
rows, an hour).  :data:`SAFE_CIRCLE` is ``scircle`` that cannot fail — a radius
outside [0, pi/2] or NaN gives NULL, as the ADQL translator already made such a
circle — declared LEAKPROOF, which the translator uses for every circle that is not
a constant; the planner can then make the condition an index condition.
"""

from __future__ import annotations

# (function signature, the ADQL construct whose index use it enables)
LEAKPROOF_FUNCTIONS: tuple[tuple[str, str], ...] = (
    ("radians(double precision)", "POINT(s_ra, s_dec) in degrees"),
    ("spoint(double precision, double precision)", "POINT(s_ra, s_dec)"),
    ("spoint_contained_by_circle(spoint, scircle)", "CONTAINS(POINT, CIRCLE), DISTANCE cone"),
    ("spoint_contained_by_circle_com(scircle, spoint)", "commuted form of the above"),
    ("spoly_contains_point_com(spoint, spoly)", "CONTAINS(POINT, POLYGON)"),
    ("spoly_contains_point(spoly, spoint)", "commuted form of the above"),
    ("sbox_cont_point_com(spoint, sbox)", "CONTAINS(POINT, BOX)"),
    ("scircle_contains_polygon_com(spoly, scircle)", "CONTAINS(s_region, CIRCLE)"),
    ("spoly_contains_polygon_com(spoly, spoly)", "CONTAINS(s_region, POLYGON)"),
    ("spoly_overlap_circle(spoly, scircle)", "INTERSECTS(s_region, CIRCLE)"),
    ("spoly_overlap_circle_com(scircle, spoly)", "commuted form of the above"),
    ("spoly_overlap_polygon(spoly, spoly)", "INTERSECTS(s_region, POLYGON)"),
    # s_region is indexed through its bounding circle (tap_schema.declaration):
    ("scircle_overlap(scircle, scircle)", "INTERSECTS(s_region, CIRCLE)"),
    ("scircle_contained_by_circle(scircle, scircle)", "CONTAINS(CIRCLE, s_region)"),
    ("scircle_contains_circle(scircle, scircle)", "commuted form of the above"),
    ("scircle_contains_polygon(scircle, spoly)", "CONTAINS(POLYGON, s_region), commuted"),
    # [t_min, t_max] is indexed as a flat box (tap_schema.declaration.T_INTERVAL): the
    # constructors take any doubles (no checks), the overlap test compares numbers.
    ("point(double precision, double precision)", "SIA TIME: the interval's corners"),
    ("box(point, point)", "SIA TIME: the interval as a box"),
    ("box_overlap(box, box)", "SIA TIME: interval overlap"),
)


#: The ADQL translator's circle constructor for non-constant circles (its own copy:
#: vo_service.adql.geometry.SAFE_CIRCLE; a test keeps them equal).
SAFE_CIRCLE = "public.lick_scircle"

# plpgsql: never inlined, so the planner sees this function (and its LEAKPROOF mark),
# not the scircle call inside.  Every branch returns; nothing in it can raise for any
# spoint and any double precision (NaN fails both comparisons).
SAFE_CIRCLE_BODY = f"""FUNCTION {SAFE_CIRCLE}(p_center spoint, p_radius double precision)
RETURNS scircle LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
BEGIN
    IF p_radius >= 0 AND p_radius <= pg_catalog.pi() / 2 THEN
        RETURN public.scircle(p_center, p_radius);
    END IF;
    RETURN NULL;
END
$$"""


def leakproof_statements() -> list[str]:
    """``ALTER FUNCTION ... LEAKPROOF`` for each function above, and the never-failing
    circle constructor, made LEAKPROOF (run as a superuser)."""
    return [f"ALTER FUNCTION {signature} LEAKPROOF" for signature, _ in LEAKPROOF_FUNCTIONS
            ] + [f"CREATE OR REPLACE {SAFE_CIRCLE_BODY}",
                 f"ALTER FUNCTION {SAFE_CIRCLE}(spoint, double precision) LEAKPROOF"]
