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


def to_stcs_column(values: Sequence[object]) -> list[object]:
    """A column of pgSphere text as STC-S; None and values that are not text stay.

    The numbers of the whole column are parsed, rounded and written at once (one
    numpy conversion, as the DALI geometry cells are), which keeps the per-row cost
    of ``SELECT *`` on ObsCore low; each value's share is its comma count plus one.
    """
    texts = [v for v in values if isinstance(v, str)]
    if not texts:
        return list(values)
    radians = np.array(" ".join(texts).translate(_PUNCTUATION).split(), dtype=np.float64)
    numbers = degree_texts(round_degrees(radians))
    out: list[object] = []
    pos = 0
    for value in values:
        if not isinstance(value, str):
            out.append(value)
            continue
        count = value.count(",") + 1
        out.append(_shape(value.lstrip(), numbers[pos:pos + count]))
        pos += count
    if pos != len(numbers):
        raise ValueError("unparsable pgSphere value in an adql:REGION column")
    return out


def _shape(text: str, numbers: list[str]) -> str:
    if text.startswith("{"):
        return "POLYGON ICRS " + " ".join(numbers)
    if text.startswith("<"):
        return "CIRCLE ICRS " + " ".join(numbers)
    if text.startswith("(("):
        return "BOX ICRS " + " ".join(numbers)
    return "POSITION ICRS " + " ".join(numbers)


def to_stcs(value: str | None) -> str | None:
    """One value as STC-S (see :func:`to_stcs_column`)."""
    converted = to_stcs_column([value])[0]
    assert converted is None or isinstance(converted, str)
    return converted


def convert_rows(rows: list[tuple[object, ...]], indexes: Sequence[int]
                 ) -> list[tuple[object, ...]]:
    """The rows with the values at ``indexes`` turned into STC-S, a column at a time."""
    if not indexes or not rows:
        return rows
    columns = list(zip(*rows, strict=True))
    for i in indexes:
        columns[i] = tuple(to_stcs_column(columns[i]))
    return list(zip(*columns, strict=True))


def pgsphere_degrees(value: str) -> tuple[str, np.ndarray]:
    """A pgSphere value's kind (``polygon``, ``circle``, ``box``, ``point``) and its
    numbers in degrees, unrounded (for computing with them, e.g. coverage maps)."""
    text = value.lstrip()
    kind = ("polygon" if text.startswith("{") else "circle" if text.startswith("<")
            else "box" if text.startswith("((") else "point")
    numbers = np.degrees(np.array(text.translate(_PUNCTUATION).split(), dtype=np.float64))
    return kind, numbers
