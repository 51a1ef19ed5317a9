"""What a query result looks like between the translator, the executor and the writers.

The ADQL translator describes each output column with a :class:`ResultColumn` (from
TAP_SCHEMA metadata); the writers in :mod:`vo_service.serialize` turn the rows into
VOTable FIELDs and cells, CSV/TSV text or FITS columns.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResultColumn:
    """One output column: VOTable datatype/arraysize/xtype plus the descriptive metadata.

    ``datatype`` is a VOTable primitive (boolean, short, int, long, float, double, char,
    unicodeChar); ``xtype`` follows DALI (timestamp, point, circle, polygon, interval).
    Geometry values arrive from PostgreSQL as pgSphere text in its default (radian)
    output and are rendered by the writers as DALI double arrays in degrees.
    """

    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
