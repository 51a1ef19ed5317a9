"""Shared by the DataLink and download tests: datasets of the demo archive by kind."""

from __future__ import annotations

import io
from typing import Any

import httpx
from astropy.io.votable import parse_single_table

from tests.conftest import DemoArchive, TestDatabase, fetch

NIGHT = "((now() AT TIME ZONE 'UTC') - interval '20 hours')::date"
PUBLIC = f"f.release_date IS NOT NULL AND f.release_date::date <= {NIGHT}"
PROPRIETARY = f"f.release_date::date > {NIGHT} AND cardinality(f.owner_ids) > 0"
DATALINK_TYPE = "application/x-votable+xml;content=datalink"
UNKNOWN = "ivo://lick.archive.example/lick?2001-01/01/shane/no-such-file.fits"


def one(database: TestDatabase, condition: str) -> tuple[str, int | None]:
    """(did, first owner) of a FITS file matching ``condition`` (alias f: lick.files,
    o: ivoa.obscore)."""
    rows = fetch(database.owner_dsn,
                 "SELECT f.obs_publisher_did, f.owner_ids[1] FROM lick.files f JOIN "
                 "ivoa.obscore o USING (obs_publisher_did) WHERE f.filename LIKE '%%.fits' "
                 f"AND f.file_size > 0 AND {condition} ORDER BY f.path LIMIT 1")
    assert rows, condition
    return str(rows[0][0]), rows[0][1]


def owner_auth(archive: DemoArchive, obid: int) -> tuple[str, str]:
    return archive.password(obid)


def links(base_url: str, ids: list[str], auth: Any = None, **kwargs: Any) -> Any:
    reply = httpx.get(f"{base_url}/datalink/links", params=[("ID", i) for i in ids],
                      auth=auth, timeout=60, **kwargs)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == DATALINK_TYPE
    return parse_single_table(io.BytesIO(reply.content)).to_table(use_names_over_ids=True)
