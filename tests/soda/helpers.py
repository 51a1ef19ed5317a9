"""Finding demo frames by kind and reading cutouts back, for the server tests."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx
from astropy.io import fits

from tests.conftest import RunningServer, TestDatabase, fetch

#: The current observing night, as access-control.md defines it.
NIGHT = "((now() AT TIME ZONE 'UTC') - interval '20 hours')::date"
PUBLIC = f"f.release_date IS NOT NULL AND f.release_date::date <= {NIGHT}"
PRIVATE = f"f.release_date::date > {NIGHT} AND cardinality(f.owner_ids) > 0"
#: Readable frames (the demo breaks a few on purpose: those are chosen by path).
CLEAN = "coalesce(f.ingest_flags, '') = '' AND f.frame_type = 'science'"

KINDS = {
    "nickel": f"f.instrument_dir = 'nickel' AND f.night >= '2010-01-01' AND {CLEAN}",
    "sharcs": f"f.instrument_dir = 'AO' AND {CLEAN}",
    "nickel_old": f"f.instrument_dir = 'nickel' AND f.night < '2010-01-01' AND {CLEAN}",
    "kast": f"f.instrument_dir = 'shane' AND {CLEAN}",
    "any": "TRUE",
}


@dataclass(frozen=True)
class Frame:
    did: str
    path: Path  # on the demo archive's disk
    owner: int | None
    em_min: float | None
    em_max: float | None


def frames(database: TestDatabase, root: Path, kind: str, access: str = PUBLIC,
           limit: int = 1) -> list[Frame]:
    rows = fetch(database.owner_dsn,
                 "SELECT f.obs_publisher_did, f.path, f.owner_ids[1], o.em_min, o.em_max "
                 "FROM lick.files AS f JOIN ivoa.obscore AS o USING (obs_publisher_did) "
                 f"WHERE {KINDS[kind]} AND {access} ORDER BY f.path LIMIT %s", (limit,))
    assert rows, f"the demo archive has no {kind} frame ({access})"
    return [Frame(r[0], root / r[1], r[2], r[3], r[4]) for r in rows]


def soda(server: RunningServer, *pairs: tuple[str, str], auth: object = None,
         post: bool = False) -> httpx.Response:
    url = f"{server.base_url}/soda/sync"
    with httpx.Client(timeout=60, auth=auth) as client:  # type: ignore[arg-type]
        if post:
            form: dict[str, list[str]] = {}
            for name, value in pairs:
                form.setdefault(name, []).append(value)
            return client.post(url, data=form)
        return client.get(url, params=list(pairs))


def read_fits(content: bytes) -> fits.HDUList:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fits.open(io.BytesIO(content))


def original_pixels(hdr: fits.Header) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1), 0-based inclusive, from the cutout's HISTORY."""
    for line in hdr.get("HISTORY", []):
        match = re.search(r"original pixels \[(\d+):(\d+),(\d+):(\d+)\]", str(line))
        if match:
            a, b, c, d = (int(v) - 1 for v in match.groups())
            return a, b, c, d
    raise AssertionError("no 'original pixels' HISTORY card")


def soda_error(reply: httpx.Response, status: int, label: str = "UsageError") -> str:
    """The text of a SODA error document, checked for status, type and label."""
    assert reply.status_code == status, (reply.status_code, reply.text[:500])
    assert reply.headers["content-type"].startswith("text/plain"), reply.headers
    assert reply.text.startswith(f"{label}: "), reply.text[:300]
    return reply.text
