"""pgSphere values as STC-S strings, for columns published as ``adql:REGION``.

ObsCore 1.1 types ``s_region`` as adql:REGION; TAP 1.1 sect. 4.3 writes such values
as STC-S text (``POLYGON ICRS ra1 dec1 ra2 dec2 ...``, degrees).  pgSphere prints
its values in radians: ``{(a , b),(c , d),...}`` for a polygon, ``<(a , b) , r>`` for
a circle, ``(a , b)`` for a point.  The numbers are rounded as every geometry value
is (:data:`vo_service.serialize.columns.GEOMETRY_DECIMALS`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vo_service.serialize.columns import degree_texts, round_degrees

_PUNCTUATION = str.maketrans("{}()<>,", "       ")


def _degrees(text: str) -> list[str]:
    """The numbers in degrees, rounded and written as the DALI geometry cells are."""
    radians = np.array(text.translate(_PUNCTUATION).split(), dtype=np.float64)
    return degree_texts(round_degrees(radians).tolist())


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
