"""pyvo's SODA client against /soda/sync, as astronomers' scripts use it.

Part 1 works today: pyvo's ``SodaQuery`` given the service URL and an ID (what
``SodaRecordMixin.processed`` builds from a service descriptor) makes cutouts that
astropy reads, and shows SODA's error text.

Part 2 goes through DataLink (``/datalink/links``, which publishes the SODA service
descriptor pointing at ``<base_url>/soda/sync`` with ID, CIRCLE, POLYGON, POS and
BAND): a TAP row's DataLink document (the query ``getdatalink()`` sends) ->
``processed(circle=...)`` on its ``#cutout`` row.  It was written while DataLink was
being built, passing on what existed then; now that DataLink is in, every step is
required.
"""

from __future__ import annotations

import math
import warnings
from urllib.parse import quote

import numpy as np
import pytest
import pyvo
from astropy.io import fits
from pyvo.dal.adhoc import DatalinkQuery, SodaQuery
from pyvo.dal.exceptions import DALServiceError

from tests.soda.frames import sky_of, wcs_of
from tests.soda.helpers import frames, original_pixels, read_fits

SODA_SYNC = "ivo://ivoa.net/std/SODA#sync-1.0"


def _target(frame, fx: float = 0.5, fy: float = 0.5) -> tuple[float, float, float]:
    """(ra, dec, degrees per pixel) of a point of a frame."""
    original = fits.getheader(frame.path)
    wcs = wcs_of(original)
    ra, dec = sky_of(wcs, fx * original["NAXIS1"], fy * original["NAXIS2"])
    scale = math.sqrt(abs(np.linalg.det(wcs.celestial.pixel_scale_matrix)))
    return ra, dec, scale


def _read(stream) -> fits.HDUList:
    return read_fits(stream.read())


@pytest.mark.parametrize("kind", ["nickel", "sharcs"])
def test_soda_query_circle_polygon_range_band(server, archive, kind):
    frame = frames(server.database, archive.root, kind)[0]
    ra, dec, scale = _target(frame)
    url = f"{server.base_url}/soda/sync"
    r = 6 * scale
    queries = {
        "circle": SodaQuery(url, id=frame.did, circle=(ra, dec, r)),
        "polygon": SodaQuery(url, id=frame.did,
                             polygon=(ra - r, dec - r, ra + r, dec - r, ra, dec + r)),
        "range": SodaQuery(url, id=frame.did, range=(ra - r, ra + r, dec - r, dec + r)),
        "band": SodaQuery(url, id=frame.did, circle=(ra, dec, r),
                          band=(frame.em_min or 1e-7, frame.em_max or 1e-5)),
    }
    for name, query in queries.items():
        stream = query.execute_stream()
        query.raise_if_error()
        with _read(stream) as hdus:
            x0, x1, y0, y1 = original_pixels(hdus[0].header)
            assert 0 < hdus[0].data.size <= (2 * 6 * 1.5 + 3) ** 2, name
            assert np.array_equal(hdus[0].data,
                                  fits.getdata(frame.path)[y0:y1 + 1, x0:x1 + 1]), name


def test_soda_query_errors_reach_the_user(server, archive):
    frame = frames(server.database, archive.root, "nickel")[0]
    query = SodaQuery(f"{server.base_url}/soda/sync", id=frame.did + "-missing",
                      circle=(10, 10, 0.1))
    query.execute_stream()
    with pytest.raises(DALServiceError) as caught:
        query.raise_if_error()
    assert "AuthenticationError: no public dataset" in str(caught.value)
    assert caught.value.code == 401


def test_through_the_datalink_service_descriptor(server, archive):
    frame = frames(server.database, archive.root, "nickel")[0]
    ra, dec, scale = _target(frame, 0.3, 0.6)
    tap = pyvo.dal.TAPService(server.tap_url)
    rows = tap.search("SELECT obs_publisher_did, access_url, access_format FROM "
                      f"ivoa.obscore WHERE obs_publisher_did = '{frame.did}'")
    record = rows[0]
    assert "content=datalink" in record.getdataformat()
    # ingest wrote the configured base URL (the demo's 127.0.0.1:8000), not this
    # server's: the DataLink query below is what getdatalink() sends, to this server
    assert record.getdataurl().endswith(f"/datalink/links?ID={quote(frame.did, safe='')}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        links = DatalinkQuery(f"{server.base_url}/datalink/links", id=frame.did).execute()
    descriptor = links.get_adhocservice_by_ivoid(SODA_SYNC)
    access = {p.name: p.value for p in descriptor.params}["accessURL"]
    assert access == f"{server.base_url}/soda/sync"
    (inputs,) = [g for g in descriptor.groups if g.name == "inputParams"]
    assert {p.name for p in inputs.entries} == {"ID", "CIRCLE", "POLYGON", "POS", "BAND"}
    # (bysemantics() would fetch the DataLink vocabulary from the network)
    row = next((r for r in links if r["semantics"] == "#cutout"), links[0])
    stream = row.processed(circle=(ra, dec, 5 * scale))
    with _read(stream) as hdus:
        x0, x1, y0, y1 = original_pixels(hdus[0].header)
        assert np.array_equal(hdus[0].data, fits.getdata(frame.path)[y0:y1 + 1, x0:x1 + 1])
