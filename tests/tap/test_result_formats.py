"""Computed geometry as the running service serves it, in every format, read by pyvo,
astropy and STILTS votlint."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvo
from astropy.io import fits
from astropy.io.votable import parse

from tests.serialize.test_results import without_polygon_xtype
from tests.xsd import validate

GEOMETRY = ("SELECT TOP 20 obs_id, POINT('ICRS', s_ra, s_dec) AS p, CIRCLE('ICRS', 1, 2, 3) AS c, "
            "CENTROID(s_region), POINT('ICRS', 1, 2) AS exact, "
            "POLYGON('ICRS', 10, 20, 11, 20, 11, 21) AS poly, s_region FROM ivoa.obscore "
            "ORDER BY obs_id")


def _sync(server, query: str, fmt: str) -> bytes:
    reply = httpx.get(f"{server.tap_url}/sync", timeout=60, params={
        "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": fmt})
    assert reply.status_code == 200, reply.text
    return reply.content


@pytest.mark.parametrize("fmt", ["votable", "votable/b", "votable/td"])
def test_computed_geometry_reads_back(server, archive, fmt):
    """Every row arrives (BINARY2 and BINARY lost them all while the FIELDs said "*")."""
    body = _sync(server, GEOMETRY, fmt)
    root = validate(body)
    fields = {f.get("name"): f for f in root.iter("{http://www.ivoa.net/xml/VOTable/v1.3}FIELD")}
    assert [fields[n].get("arraysize") for n in ("p", "c", "centroid", "exact", "poly")] == [
        "2", "3", "2", "2", "*"]
    table = parse(io.BytesIO(body)).get_first_table().array
    assert len(table) == 20
    assert list(table["exact"][0]) == [1.0, 2.0]
    assert list(table["c"][0]) == [1.0, 2.0, 3.0]
    assert list(table["poly"][0]) == [10.0, 20.0, 11.0, 20.0, 11.0, 21.0]
    for row in table:
        assert np.all(np.isfinite(row["p"])) and np.all(np.isfinite(row["centroid"]))
        assert str(row["s_region"]).startswith("POLYGON ICRS ")


def test_pyvo_reads_computed_geometry(server, archive):
    result = pyvo.dal.TAPService(server.tap_url).search(GEOMETRY)
    table = result.to_table()
    assert len(table) == 20
    assert list(table["exact"][0]) == [1.0, 2.0]


def test_text_formats_say_1_2(server, archive):
    for fmt, separator in (("csv", ","), ("tsv", "\t")):
        text = _sync(server, GEOMETRY, fmt).decode()
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator,
                               quoting=csv.QUOTE_MINIMAL if fmt == "csv" else csv.QUOTE_NONE))
        header, first = rows[0], rows[1]
        assert len(rows) == 21
        assert first[header.index("exact")] == "1 2"
        assert first[header.index("c")] == "1 2 3"
        assert first[header.index("poly")] == "10 20 11 20 11 21"
    with fits.open(io.BytesIO(_sync(server, GEOMETRY, "fits"))) as hdus:
        assert list(hdus[1].data["exact"][0]) == [1.0, 2.0]
        assert len(hdus[1].data) == 20


@pytest.mark.skipif(shutil.which("stilts") is None, reason="STILTS is not installed")
@pytest.mark.parametrize("fmt", ["votable", "votable/b", "votable/td"])
def test_votlint_passes_served_geometry(server, archive, fmt, tmp_path: Path):
    body = _sync(server, GEOMETRY, fmt)
    path = tmp_path / "served.vot"
    path.write_bytes(without_polygon_xtype(body, fmt))
    done = subprocess.run(["stilts", "votlint", f"votable={path}"], capture_output=True,
                          text=True, timeout=120)
    assert (done.stdout + done.stderr).strip() == ""
