"""Geometry as a real PostgreSQL + pgSphere prints it, through the writers.

The database computes both the pgSphere value and, independently, the expected
degrees with plain SQL arithmetic; the VOTable written from the fetched rows must
carry the latter.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import psycopg2
import pytest
from astropy.io.votable import parse

from tests.conftest import fetch
from tests.xsd import validate
from vo_service.result import ResultColumn
from vo_service.serialize.formats import resolve_format
from vo_service.serialize.results import ResultInfo, stream_result

QUERY = """
SELECT spoint(radians(ra), radians(dec)),
       scircle(spoint(radians(ra), radians(dec)), radians(r)),
       CASE WHEN ra IS NOT NULL THEN spoly(format('{(%sd,%sd),(%sd,%sd),(%sd,%sd)}',
                                                  ra, dec, ra + 1, dec, ra + 1, dec + 1)) END,
       sbox(spoint(radians(ra), radians(dec)), spoint(radians(ra + 2), radians(dec + 1))),
       ARRAY[ra, dec], ARRAY[ra, dec, r], ARRAY[ra, dec, ra + 1, dec, ra + 1, dec + 1],
       ARRAY[ra, dec, ra + 2, dec, ra + 2, dec + 1, ra, dec + 1],
       ts, night
FROM (VALUES (10.5::float8, 20.25::float8, 0.5::float8,
              timestamp '2020-02-29 23:59:59.5', date '2020-02-29'),
             (357.0, -89.5, 1e-3, timestamp '1999-01-01 00:00:00', date '1999-01-01'),
             (0.0, 0.0, 89.0, timestamp '2030-06-15 12:00:00', date '2030-06-15'),
             (NULL, NULL, NULL, NULL, NULL)) AS v(ra, dec, r, ts, night)
"""

COLUMNS = [
    ResultColumn("p", "double", "2", "point", unit="deg"),
    ResultColumn("c", "double", "3", "circle", unit="deg"),
    ResultColumn("poly", "double", "*", "polygon", unit="deg"),
    ResultColumn("box", "double", "*", "polygon", unit="deg"),
    ResultColumn("ts", "char", "*", "timestamp"),
    ResultColumn("night", "char", "*", "timestamp"),
]


@pytest.fixture(scope="module")
def fetched(database: Any) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(database.query_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(QUERY)
            rows = cur.fetchall()
    finally:
        conn.close()
    return rows


def test_pgsphere_text_format_is_what_the_writers_expect(fetched: list[tuple[Any, ...]]) -> None:
    point, circle, poly, box = fetched[0][:4]
    assert point.startswith("(") and " , " in point
    assert circle.startswith("<(") and circle.endswith(">")
    assert poly.startswith("{(") and poly.count("(") == 3
    assert box.startswith("((")


@pytest.mark.parametrize("fmt", ["votable/td", "votable/b", "votable/b2"])
def test_geometry_from_pgsphere_in_degrees(fetched: list[tuple[Any, ...]], fmt: str) -> None:
    def batches() -> Iterator[list[tuple[Any, ...]]]:
        yield [row[:4] + row[8:] for row in fetched]

    out = b"".join(stream_result(resolve_format(fmt), COLUMNS, batches(), maxrec=None,
                                 info=ResultInfo(query="SELECT geometry")))
    validate(out)
    array = parse(io.BytesIO(out)).get_first_table().array
    for r, row in enumerate(fetched):
        expected = row[4:8]
        for c, want in enumerate(expected):
            got = array[array.dtype.names[c]][r]
            if want is None or all(v is None for v in want):
                assert np.all(np.ma.getmaskarray(got)) or len(got) == 0
            else:
                # pgSphere prints 15 significant digits of radians
                np.testing.assert_allclose(np.asarray(got, float), want, rtol=1e-13,
                                           atol=1e-12)
        ts, night = row[8], row[9]
        assert array["ts"][r] == ("" if ts is None else ts.isoformat())
        assert array["night"][r] == ("" if night is None else night.isoformat())
    assert array["ts"][0] == "2020-02-29T23:59:59.500000"


def test_text_timestamps_give_the_same_cells(database: Any, fetched: list[tuple[Any, ...]]
                                             ) -> None:
    from vo_service.serialize.results import register_text_timestamps

    conn = psycopg2.connect(database.query_dsn)
    try:
        with conn.cursor() as cur:
            register_text_timestamps(cur)
            cur.execute(QUERY)
            as_text = cur.fetchall()
        with conn.cursor() as cur:  # other cursors on the connection are unaffected
            cur.execute("SELECT timestamp '2020-01-01 00:00:00'")
            row = cur.fetchone()
            assert row is not None and not isinstance(row[0], str)
    finally:
        conn.close()
    assert isinstance(as_text[0][8], str)
    columns = COLUMNS[4:]
    cells = []
    for rows in (fetched, as_text):
        out = b"".join(stream_result(
            resolve_format("votable/b2"), columns, iter([[row[8:] for row in rows]]),
            maxrec=None, info=ResultInfo()))
        array = parse(io.BytesIO(out)).get_first_table().array
        cells.append([[datetime.fromisoformat(v) if v else None for v in array[name]]
                      for name in ("ts", "night")])
    assert cells[0] == cells[1]
    assert all("T" in str(v) for v in parse(io.BytesIO(out)).get_first_table().array["ts"]
               if v)


EXACT_QUERY = """
SELECT spoint(radians(1), radians(2)),
       scircle(spoint(radians(1), radians(2)), radians(3)),
       spoly('{(10.684708d, 41.26875d), (10.7d, 41.26875d), (10.7d, 41.3d)}'),
       '(6.28318530717958 , -1e-16)'
"""
EXACT_COLUMNS = [
    ResultColumn("p", "double", "*", "point"), ResultColumn("c", "double", "*", "circle"),
    ResultColumn("poly", "double", "*", "polygon"),
    # pgSphere itself prints a longitude this close to 2 pi as 0: a made-up value
    # shows that one rounding up to 360 is written as 0, and -0 as 0.
    ResultColumn("edge", "double", "*", "point"),
]
EXACT = [[1.0, 2.0], [1.0, 2.0, 3.0], [10.684708, 41.26875, 10.7, 41.26875, 10.7, 41.3],
         [0.0, 0.0]]
EXACT_TEXT = ["1 2", "1 2 3", "10.684708 41.26875 10.7 41.26875 10.7 41.3", "0 0"]


@pytest.mark.parametrize("fmt", ["votable/td", "votable/b", "votable/b2", "csv", "tsv",
                                 "fits"])
def test_geometry_is_rounded_to_what_the_data_carry(database: Any, fmt: str) -> None:
    """pgSphere's radians give 1.0000000000000002 for 1 degree; every format says 1."""
    rows = fetch(database.query_dsn, EXACT_QUERY)
    assert rows[0][0] == "(0.0174532925199433 , 0.0349065850398866)"  # noisy in degrees
    out = b"".join(stream_result(resolve_format(fmt), EXACT_COLUMNS, iter([rows]),
                                 maxrec=None, info=ResultInfo()))
    if fmt in ("csv", "tsv"):
        separator = "," if fmt == "csv" else "\t"
        cells = out.decode().splitlines()[1].split(separator)
        assert cells == EXACT_TEXT
        return
    if fmt == "fits":
        from astropy.io import fits

        with fits.open(io.BytesIO(out)) as hdus:
            got = [list(hdus[1].data.field(i)[0]) for i in range(len(EXACT))]
    else:
        array = parse(io.BytesIO(out)).get_first_table().array
        got = [list(array[c.name][0]) for c in EXACT_COLUMNS]
        if fmt == "votable/td":
            assert f"<TD>{'</TD><TD>'.join(EXACT_TEXT)}</TD>".encode() in out
    assert got == EXACT  # exactly, as doubles


def test_stcs_regions_use_the_same_rounding(database: Any) -> None:
    from vo_service.serialize.stcs import to_stcs

    point, circle, poly, edge = fetch(database.query_dsn, EXACT_QUERY)[0]
    assert to_stcs(point) == "POSITION ICRS 1 2"
    assert to_stcs(circle) == "CIRCLE ICRS 1 2 3"
    assert to_stcs(poly) == "POLYGON ICRS 10.684708 41.26875 10.7 41.26875 10.7 41.3"
    assert to_stcs(edge) == "POSITION ICRS 0 0"


def test_degree_texts_are_the_shortest_fixed_point_decimals() -> None:
    import numpy as np

    from vo_service.serialize.columns import degree_texts, round_degrees

    values = np.array([0.0, 1.0, 359.9999999999, -47.2535392378, 1e-5, -1e-10, 100.5, 90.0,
                       0.0000100001, 100.00001, np.nan, np.inf])
    assert degree_texts(values) == [
        "0", "1", "359.9999999999", "-47.2535392378", "0.00001", "-0.0000000001", "100.5",
        "90", "0.0000100001", "100.00001", "NaN", "+Inf"]
    rng = np.random.default_rng(3)
    rounded = round_degrees(rng.uniform(-1.6, 6.3, 20000))
    assert [float(t) for t in degree_texts(rounded)] == rounded.tolist()
