"""The optional ADQL 2.1 features and UDFs this translator supports, for TAPRegExt.

The capabilities document lists one ``languageFeatures`` element per ``type`` with
a ``feature`` (form, description) per entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from vo_service.adql.udfs import REGISTRY


@dataclass(frozen=True)
class LanguageFeature:
    type: str
    form: str
    description: str


_PREFIX = "ivo://ivoa.net/std/TAPRegExt#features-"
GEO = _PREFIX + "adqlgeo"
UDF = _PREFIX + "udf"

_GEOMETRY = (
    ("AREA", "Area of a geometry in square degrees."),
    ("BOX", "A box (a polygon whose sides are great circles) from centre, width and height."),
    ("CENTROID", "Centre of a circle; vertex centroid of a polygon."),
    ("CIRCLE", "A circle from centre and radius in degrees."),
    ("CONTAINS", "1 if the first geometry lies within the second, else 0."),
    ("COORD1", "First coordinate (RA) of a point in degrees."),
    ("COORD2", "Second coordinate (Dec) of a point in degrees."),
    ("COORDSYS", "The coordinate system of a geometry (always ICRS here)."),
    ("DISTANCE", "Great-circle distance in degrees between two points (2 or 4 arguments); "
                 "DISTANCE(...) < r uses the spatial index."),
    ("INTERSECTS", "1 if two geometries overlap, else 0."),
    ("POINT", "A point from RA and Dec in degrees."),
    ("POLYGON", "A polygon from three or more vertices (coordinates or points)."),
    ("REGION", "A region from an STC-S literal: Position, Circle, Box or Polygon in ICRS."),
)

_OTHER = (
    ("adql-string", "LOWER", "Lower-case a string."),
    ("adql-string", "UPPER", "Upper-case a string."),
    ("adql-string", "ILIKE", "Case-insensitive LIKE."),
    ("adql-sets", "UNION", "Union of two query results (ALL keeps duplicates)."),
    ("adql-sets", "EXCEPT", "Rows of the first result not in the second (ALL supported)."),
    ("adql-sets", "INTERSECT", "Rows in both results (ALL supported)."),
    ("adql-common-table", "WITH", "Common table expressions."),
    ("adql-type", "CAST", "CAST to SMALLINT, INTEGER, BIGINT, REAL, DOUBLE PRECISION, CHAR(n), "
                          "VARCHAR(n), TIMESTAMP, and from DALI strings to POINT, CIRCLE, "
                          "POLYGON."),
    ("adql-conditional", "COALESCE", "The first non-NULL argument."),
    ("adql-unit", "IN_UNIT", "Convert a column value to another VOUnit."),
    ("adql-offset", "OFFSET", "Skip rows at the start of the result."),
)

LANGUAGE_FEATURES: tuple[LanguageFeature, ...] = (
    tuple(LanguageFeature(GEO, form, text) for form, text in _GEOMETRY)
    + tuple(LanguageFeature(_PREFIX + kind, form, text) for kind, form, text in _OTHER)
    + tuple(LanguageFeature(UDF, udf.form, udf.description) for udf in REGISTRY.values())
)
