"""Every function and operator with every kind of argument: the translator refuses
the combination (AdqlError, with a position) or PostgreSQL runs it; only bad values
(division by zero, an overflow) may fail there, never a missing operator, a grouping
error or a crash (tests/adql/checks.py)."""

from __future__ import annotations

import itertools

import pytest

from tests.adql.checks import run_checked, translate_checked
from vo_service.adql.udfs import REGISTRY

VALUES = ["NULL", "1", "2.5", "-3", "1e3", "s_ra", "calib_level", "'x'", "'2020-01-01'", "obs_id",
          "obs_release_date", "POINT(1, 2)", "s_region", "COUNT(*)", "t_exptime",
          "CAST('2020-01-01' AS TIMESTAMP)", "CONTAINS(POINT(1, 2), s_region)"]
GEOMETRIES = ["POINT(s_ra, s_dec)", "CIRCLE(1, 2, 3)", "CIRCLE(s_ra, s_dec, 1)", "s_region",
              "BOX(s_ra, s_dec, 1, 1)", "POLYGON(1, 2, 3, 4, 5, 7)",
              "POLYGON(s_ra, s_dec, s_ra + 1, s_dec, s_ra, s_dec + 1)", "CENTROID(s_region)",
              "NULL", "REGION('Circle ICRS 1 2 3')", "1", "obs_id"]


def _queries(family: str) -> list[str]:
    if family == "functions":
        one = ["ABS", "ACOS", "CEILING", "COS", "DEGREES", "EXP", "FLOOR", "LOG", "LOG10",
               "SQRT", "ROUND", "TRUNCATE", "LOWER", "UPPER", "MIN", "MAX", "AVG", "SUM",
               "COUNT"]
        two = ["ATAN2", "MOD", "POWER", "ROUND", "COALESCE"]
        exprs = [f"{f}({v})" for f in one for v in VALUES] + [f"-{v}" for v in VALUES]
        exprs += [f"{f}({a}, {b})" for f in two for a, b in itertools.product(VALUES, VALUES)]
        exprs += [f"{a} {op} {b}" for op in ("+", "/", "||")
                  for a, b in itertools.product(VALUES, VALUES)]
        exprs += [f"CAST({v} AS {t})" for v in VALUES for t in (
            "SMALLINT", "BIGINT", "DOUBLE PRECISION", "CHAR(3)", "VARCHAR", "TIMESTAMP",
            "POINT")]
        for name, udf in REGISTRY.items():
            for args in itertools.product(VALUES[:10], repeat=len(udf.arguments)):
                if len(args) <= 2 or len(set(args)) == 1:
                    exprs.append(f"{name}({', '.join(args)})")
        return [f"SELECT {e} FROM ivoa.obscore" for e in exprs]
    if family == "conditions":
        forms = ["{a} = {b}", "{a} < {b}", "{a} BETWEEN {b} AND {a}", "{a} IN ({b}, {a})",
                 "{a} LIKE {b}", "{a} ILIKE {b}", "{a} IN (SELECT {b} FROM ivoa.obscore)"]
        return [f"SELECT COUNT(*) FROM ivoa.obscore WHERE {c.format(a=a, b=b)}"
                for c in forms for a, b in itertools.product(VALUES, VALUES)]
    exprs = [f"{f}({g})" for f in ("AREA", "CENTROID", "COORD1", "COORDSYS") for g in GEOMETRIES]
    exprs += [f"{f}({g}, 1)" for f in ("CIRCLE", "BOX") for g in GEOMETRIES]
    exprs += [f"DISTANCE({a}, {b})" for a, b in itertools.product(GEOMETRIES, GEOMETRIES)]
    queries = [f"SELECT {e} FROM ivoa.obscore" for e in exprs]
    queries += [f"SELECT COUNT(*) FROM ivoa.obscore WHERE {f}({a}, {b}) = 1"
                for f in ("CONTAINS", "INTERSECTS")
                for a, b in itertools.product(GEOMETRIES, GEOMETRIES)]
    return queries


@pytest.mark.parametrize("family", ["functions", "conditions", "geometry"])
def test_combinations(readonly_conn, metadata, family: str) -> None:
    ran = 0
    for text in _queries(family):
        t = translate_checked(text, metadata)
        if t is not None:
            run_checked(readonly_conn, text, t)
            ran += 1
    assert ran > 100
