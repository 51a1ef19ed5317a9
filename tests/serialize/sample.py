"""A result with every column kind the writers know, NULLs in each, and hostile text.

Geometry cells are pgSphere text as PostgreSQL prints it (radians); the expected
degrees are computed here independently with ``math.degrees`` and ``round``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from vo_service.result import ResultColumn

COLUMNS = [
    ResultColumn("flag", "boolean", description="a boolean"),
    ResultColumn("small", "short"),
    ResultColumn("n", "int", unit="count", ucd="meta.number"),
    ResultColumn("big", "long"),
    ResultColumn("real_v", "float", unit="mag"),
    ResultColumn("dbl", "double", unit="deg", ucd="pos.eq.ra", utype="obscore:x.y"),
    ResultColumn("label", "char", "*", description="text with <markup> & \"quotes\""),
    ResultColumn("uni", "unicodeChar", "*"),
    ResultColumn("at", "char", "*", "timestamp"),
    ResultColumn("pos", "double", "2", "point", unit="deg"),
    ResultColumn("circ", "double", "3", "circle", unit="deg"),
    ResultColumn("region", "double", "*", "polygon", unit="deg"),
    ResultColumn("1 odd name", "char", "*"),
]

POINT = "(0.1 , 0.2)"
CIRCLE = "<(6.1 , -0.3) , 0.05>"
POLYGON = "{(0.174532925199433 , 0.349065850398866),(0.523598775598299 , 0.698131700797732),(0.523598775598299 , 1.74532925199433e-09)}"  # noqa: E501


def _row(i: int) -> tuple[Any, ...]:
    return (
        i % 2 == 0, i - 3, 1000 * i, 2**40 + i, 1.5 + i, 10.25 * i + 0.1,
        f"row {i}, with a comma; \"quoted\" & <tag> \t tab",
        f"unicode É ü {i}",
        (datetime(2021, 3, 4, 5, 6, 7, 123000 if i % 2 else 0) if i % 3
         else date(2020, 1, 1 + i % 28)),
        POINT, CIRCLE, POLYGON, f"odd{i}",
    )


def rows(count: int = 6) -> list[tuple[Any, ...]]:
    """``count`` ordinary rows followed by one row of NULLs and one of edge cases."""
    out = [_row(i) for i in range(count)]
    out.append(tuple([None] * len(COLUMNS)))
    out.append((
        False, -32767, -2147483647, -(2**62), math.inf, math.nan,
        "line1\nline2\r\nend \x01 ctrl", "", datetime(1999, 12, 31, 23, 59, 59),
        "(0 , -1.5707963267949)", "<(0 , 0) , 1.5707963267949>", POLYGON, "",
    ))
    return out


def degrees(text: str) -> list[float]:
    """Independent parse of pgSphere text: every number, converted to degrees and
    rounded to the 10 decimals the service promises (docs/tap.md)."""
    for ch in "{}()<>,":
        text = text.replace(ch, " ")
    rounded = [round(math.degrees(float(x)), 10) for x in text.split()]
    return [0.0 if v == 360.0 else v + 0.0 for v in rounded]


def expected_text(value: Any) -> str | None:
    """The DALI text a cell should have (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def failing_batches(rows: list[tuple[Any, ...]], closed: list[bool]
                    ) -> Iterator[list[tuple[Any, ...]]]:
    """Two batches (5 rows), then the database fails as a cursor's fetchmany would;
    ``closed`` records that the generator was closed (the executor's cursor too)."""
    try:
        yield rows[:3]
        yield rows[3:5]
        raise RuntimeError("canceling statement due to statement timeout\nCONTEXT: x")
    finally:
        closed.append(True)
