"""Limits and the crowd: the pixel cap, and many cutouts at once beside TAP queries.

The server here allows 8000 pixels a request (a demo frame has about 17000) and has
the default two compute threads, so a dozen clients each asking for several
cutouts wait for them in turn while TAP queries, which need no compute thread,
keep answering at once.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from astropy.io import fits

from tests.conftest import RunningServer, running_server
from tests.soda.frames import sky_of, wcs_of
from tests.soda.helpers import frames, read_fits, soda, soda_error

CAP = 8_000


@pytest.fixture(scope="module")
def capped(database, archive) -> Iterator[RunningServer]:
    with running_server(database, {"LICK_ARCHIVE_DOWNLOADS_CUTOUT_MAX_PIXELS": str(CAP),
                                   "LICK_ARCHIVE_DOWNLOADS_COMPUTE_THREADS": "2"}) as server:
        yield server


@pytest.fixture(scope="module")
def circles(capped, archive) -> tuple[str, list[str]]:
    """A public Nickel frame and five circles of 41 x 41 pixels on it."""
    frame = frames(capped.database, archive.root, "nickel")[0]
    header = fits.getheader(frame.path)
    wcs = wcs_of(header)
    scale = abs(float(wcs.celestial.pixel_scale_matrix[1, 1])) or abs(
        float(wcs.celestial.pixel_scale_matrix[0, 1]))
    radius = 20 * scale
    spots = [(30, 30), (90, 30), (30, 90), (90, 90), (60, 60)]
    return frame.did, [f"{ra} {dec} {radius}" for ra, dec in
                       (sky_of(wcs, x, y) for x, y in spots)]


def test_pixel_cap_is_checked_for_the_whole_request(capped, circles):
    did, regions = circles
    one = soda(capped, ("ID", did), ("CIRCLE", regions[0]))
    assert one.status_code == 200
    pixels = read_fits(one.content)[0].data.size
    assert 1600 <= pixels <= 1850
    text = soda_error(soda(capped, ("ID", did)), 400)  # the whole frame
    assert f"more than the {CAP} allowed" in text and "smaller region" in text
    text = soda_error(soda(capped, ("ID", did), *(("CIRCLE", r) for r in regions)), 400)
    assert "cutouts would hold" in text
    four = soda(capped, ("ID", did), *(("CIRCLE", r) for r in regions[:4]))
    assert four.status_code == 200 and len(read_fits(four.content)) == 5


def test_many_concurrent_cutouts_complete_and_tap_stays_fast(capped, circles):
    did, regions = circles
    tap = f"{capped.tap_url}/sync"
    query = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore"}
    with httpx.Client(timeout=60) as client:
        for _ in range(3):
            client.get(tap, params=query)
        idle = []
        for _ in range(10):
            started = time.perf_counter()
            assert client.get(tap, params=query).status_code == 200
            idle.append(time.perf_counter() - started)
    statuses: list[int] = []
    clients, rounds = 12, 4  # 48 requests of 4 cutouts each, on 2 compute threads
    pairs = [("ID", did), *(("CIRCLE", r) for r in regions[:4])]

    def cutter() -> None:
        with httpx.Client(timeout=120) as client:
            for _ in range(rounds):
                reply = client.get(f"{capped.base_url}/soda/sync", params=pairs)
                statuses.append(reply.status_code)

    threads = [threading.Thread(target=cutter) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    busy = []
    with httpx.Client(timeout=60) as client:
        while any(t.is_alive() for t in threads) and len(busy) < 200:
            begun = time.perf_counter()
            assert client.get(tap, params=query).status_code == 200
            busy.append(time.perf_counter() - begun)
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.perf_counter() - started
    assert statuses == [200] * (clients * rounds), statuses
    assert len(busy) >= 5, f"the cutouts ended too soon to measure ({elapsed:.2f} s)"
    # TAP needs no compute thread: it answers while every cutout waits its turn
    assert statistics.median(busy) < max(0.25, 5 * statistics.median(idle)), (busy, idle)
    assert max(busy) < 2.0, busy
