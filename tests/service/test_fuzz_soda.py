"""Hostile input on every SODA parameter: never a 500, always a clean error document.

The catalogue of trouble, the parameter-name and credential strategies, the form
encoding and the invariants of every answer are test_fuzz's (imported); added here
are values shaped like SODA's (shape keywords, lists of numbers of any length,
hostile numbers, real positions on a real frame, so that cutouts are really made)
and SODA's own invariants: 200 is a FITS file, 204 is empty, an error is SODA's
``<label>: <message>`` text (or, from the authentication layer, the DALI VOTable
test_fuzz checks).

The server trusts a proxy on loopback and every request comes "from" a test address:
the failed logins of hostile credentials are throttled per address, and must not
lock the loopback address the rest of the suite logs in from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import RunningServer, running_server
from tests.service.test_fuzz import FUZZ, TROUBLE, check, credentials, encode, param_lists, values
from tests.soda.frames import sky_of, wcs_of
from tests.soda.helpers import PRIVATE, frames, read_fits

SODA = ["ID", "CIRCLE", "POLYGON", "POS", "BAND", "TIME", "POL", "RESPONSEFORMAT",
        "REQUEST", "MAXREC"]
LABEL = re.compile(r"(Error|AuthenticationError|AuthorizationError|ServiceUnavailable|"
                   r"UsageError|MultiValuedParamNotSupported): \S")
FROM = {"X-Forwarded-For": "192.0.2.151"}  # TEST-NET-1: see the module docstring

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
    st.sampled_from(["-Inf", "+Inf", "inf", "NaN", "1e999", "-0", "1_0", "١٢", "0x1", "1e-320",
                     "360", "-90", "90", "180", "0", ".5", "5.", "+1", "--1", "1e", ""]),
)
shapes = st.sampled_from(["CIRCLE", "RANGE", "POLYGON", "circle", "range", "Polygon", "BOX",
                          "POINT", "", "CIRCLE\t", "\u00a0CIRCLE"])
number_lists = st.lists(numbers, max_size=14).map(" ".join)
geometry = st.one_of(number_lists, st.tuples(shapes, number_lists).map(" ".join),
                     st.sampled_from(TROUBLE))


@pytest.fixture(scope="module")
def target(database, archive) -> Iterator[RunningServer]:
    with running_server(database, {"LICK_ARCHIVE_SERVICE_TRUSTED_PROXIES": "127.0.0.1"}
                        ) as server:
        yield server


@pytest.fixture(scope="module")
def client(target: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.base_url, timeout=60, headers=FROM) as c:
        yield c


@pytest.fixture(scope="module")
def real(target, archive) -> dict[str, object]:
    """Identifiers of every kind, and a position on a public Nickel frame."""
    nickel = frames(target.database, archive.root, "nickel")[0]
    header = fits.getheader(nickel.path)
    ra, dec = sky_of(wcs_of(header), 30.0, 40.0)
    ids = [nickel.did, frames(target.database, archive.root, "sharcs")[0].did,
           frames(target.database, archive.root, "sharcs", PRIVATE)[0].did,
           frames(target.database, archive.root, "kast")[0].did,
           frames(target.database, archive.root, "nickel_old")[0].did]
    return {"ids": ids, "ra": ra, "dec": dec}


def check_soda(reply: httpx.Response, target: RunningServer) -> None:
    """test_fuzz's invariants, then SODA's."""
    check(reply, target)
    status, kind = reply.status_code, reply.headers.get("content-type", "")
    assert status in (200, 204, 400, 401, 404, 408, 413, 429, 503), (status, reply.text[:300])
    if status == 200 and reply.request.url.path.endswith("/sync"):
        assert kind == "application/fits"
        with read_fits(reply.content) as hdus:
            assert any(h.data is not None and h.data.size for h in hdus)
    if status == 204:
        assert reply.content == b""
    if status >= 400 and kind.startswith("text/plain"):
        assert LABEL.match(reply.text), reply.text[:300]


def _send(client: httpx.Client, pairs: list[tuple[str, str]], method: str,
          headers: dict[str, bytes] | None = None) -> httpx.Response:
    if method == "GET":
        return client.get("/soda/sync?" + encode(pairs), headers=headers or {})
    return client.post("/soda/sync", content=encode(pairs), headers={
        **(headers or {}), "Content-Type": "application/x-www-form-urlencoded"})


@FUZZ
@given(data=st.data(), pairs=param_lists(SODA), method=st.sampled_from(["GET", "POST"]),
       auth=credentials())
def test_soda_parameters(client, target, real, data, pairs, method, auth) -> None:
    did = data.draw(st.one_of(st.sampled_from(real["ids"]), values))
    shaped = data.draw(st.lists(st.tuples(st.sampled_from(SODA[1:5]), geometry), max_size=3))
    check_soda(_send(client, [("ID", did), *shaped, *pairs], method, auth), target)


@FUZZ
@given(data=st.data(), name=st.sampled_from(["CIRCLE", "POS", "POLYGON"]),
       band=st.one_of(st.none(), st.tuples(numbers, numbers).map(" ".join)))
def test_soda_real_cutouts_of_hostile_regions(client, target, real, data, name, band) -> None:
    """Regions near and on a real frame, of every size and shape: cutouts are made,
    refused or empty, never a crash."""
    ra, dec = float(real["ra"]), float(real["dec"])  # type: ignore[arg-type]
    lon = st.floats(ra - 0.2, ra + 0.2)
    lat = st.floats(dec - 0.2, dec + 0.2)
    size = st.one_of(st.floats(1e-9, 1e-3), st.floats(1e-3, 180.0), st.sampled_from(
        [0.0, -1.0, 180.0, 1e-300]))
    if name == "CIRCLE":
        value = data.draw(st.tuples(lon, lat, size).map(lambda t: " ".join(map(repr, t))))
    else:
        vertices = data.draw(st.lists(st.tuples(lon, lat), min_size=0, max_size=8))
        flat = " ".join(f"{a!r} {b!r}" for a, b in vertices)
        keyword = data.draw(st.sampled_from(["POLYGON", "RANGE", "CIRCLE"]))
        value = flat if name == "POLYGON" else f"{keyword} {flat}"
    pairs = [("ID", str(real["ids"][0])), (name, value)]  # type: ignore[index]
    if band is not None:
        pairs.append(("BAND", band))
    check_soda(client.get("/soda/sync", params=pairs), target)


@FUZZ
@given(pairs=param_lists(SODA), files=st.dictionaries(
    st.sampled_from(["ID", "CIRCLE", "x", "😀"]), st.binary(max_size=200), max_size=3))
def test_soda_multipart_bodies(client, target, real, pairs, files) -> None:
    data = dict([("ID", str(real["ids"][0]))] + [p for p in pairs if "\x00" not in p[0]])
    reply = client.post("/soda/sync", data=data,
                        files={k: ("f", v, "application/octet-stream") for k, v in files.items()})
    check_soda(reply, target)


@FUZZ
@given(pairs=param_lists(SODA), path=st.sampled_from(
    ["/soda/capabilities", "/soda/availability", "/soda", "/soda/", "/soda/sync/x",
     "/soda/%00", "/soda/async"]), auth=credentials())
def test_soda_vosi_and_odd_paths(client, target, pairs, path, auth) -> None:
    check_soda(client.get(path + "?" + encode(pairs), headers=auth), target)
