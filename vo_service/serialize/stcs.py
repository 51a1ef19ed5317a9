"""pgSphere values as STC-S strings, for columns published as ``adql:REGION``.

ObsCore 1.1 types ``s_region`` as adql:REGION; TAP 1.1 sect. 4.3 writes such values
as STC-S text (``POLYGON ICRS ra1 dec1 ra2 dec2 ...``, degrees).  pgSphere prints
its values in radians: ``{(a , b),(c , d),...}`` for a polygon, ``<(a , b) , r>`` for
a circle, ``(a , b)`` for a point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_PUNCTUATION = str.maketrans("{}()<>,", "       ")


def _degrees(text: str) -> list[str]:
    return [f"{math.degrees(float(x)):.10g}" for x in text.translate(_PUNCTUATION).split()]


def to_stcs(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.lstrip()
    numbers = " ".join(_degrees(stripped))
    if stripped.startswith("{"):
        return f"POLYGON ICRS {numbers}"
    if stripped.startswith("<"):
        return f"CIRCLE ICRS {numbers}"
    if stripped.startswith("(("):
        lon1, lat1, lon2, lat2 = numbers.split()
        return f"BOX ICRS {lon1} {lat1} {lon2} {lat2}"
    return f"POSITION ICRS {numbers}"


def convert_rows(rows: list[tuple[object, ...]], indexes: Sequence[int]
                 ) -> list[tuple[object, ...]]:
    """The rows with the values at ``indexes`` turned into STC-S."""
    if not indexes:
        return rows
    converted = []
    for row in rows:
        cells = list(row)
        for i in indexes:
            value = cells[i]
            cells[i] = to_stcs(value) if isinstance(value, str) or value is None else value
        converted.append(tuple(cells))
    return converted
