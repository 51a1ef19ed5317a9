"""The leak matrix on the data paths: DataLink rows and error texts, files, headers,
previews and tarballs show each principal exactly its datasets, and a hidden dataset
is answered exactly like one that does not exist.

The matrix (tests/auth/leak_matrix.py: anonymous, owners, grantees of a file, a night
and a program, staff, admin, a disabled staff account) is installed in a database of
its own — its user sync would disable the demo observers elsewhere — served by a real
server whose archive root holds a small FITS image for every row.  Two rows become
calibration frames of the public rows' night, so that calibration links are covered.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import psycopg2
import pytest
from astropy.io import fits
from lxml import etree

from tests.auth.leak_matrix import (
    ALL,
    EXPECTED,
    REFUSED_OVER_HTTP,
    ROWS,
    LeakDataset,
    install,
)
from tests.conftest import RunningServer, running_server, without_request_id
from tests.xsd import schema_for

UNKNOWN = "ivo://lick.test/leak?no_such_row"
NAMES = sorted(EXPECTED)


def _url(dsn: str) -> str:
    parts = dict(item.split("=", 1) for item in dsn.split())
    return f"postgresql://{parts['user']}@/{parts['dbname']}?host={parts['host']}"


@pytest.fixture(scope="module")
def matrix(database, tmp_path_factory) -> Iterator[tuple[RunningServer, LeakDataset]]:
    if not database.settings.embedded:
        pytest.skip("reaches its own database through the embedded cluster's socket")
    db = database.new_database("datalink_leaks")
    dataset = install(db.owner_dsn)
    root = tmp_path_factory.mktemp("leak-archive")
    conn = psycopg2.connect(db.owner_dsn)
    with conn, conn.cursor() as cur:
        for number, row in enumerate(ROWS):
            path = f"{row.night:%Y-%m/%d}/{row.instrument_dir}/{row.name}.fits"
            image = np.arange(64, dtype=np.float32).reshape(8, 8) * (number + 1)
            hdu = fits.PrimaryHDU(image)
            hdu.header["OBJECT"] = row.name
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            hdu.writeto(root / path)
            header = "\n".join(str(card) for card in hdu.header.cards)
            frame = {"alice_only": "bias", "bob_only": "flat"}.get(row.name, "science")
            cur.execute("UPDATE lick.files SET header = %s, file_size = %s, frame_type = %s,"
                        " instrument = 'Kast Blue' WHERE obs_publisher_did = %s",
                        (header, (root / path).stat().st_size, frame, dataset.did(row.name)))
            cur.execute("UPDATE ivoa.obscore SET dataproduct_type = 'image' "
                        "WHERE obs_publisher_did = %s", (dataset.did(row.name),))
    conn.close()
    with running_server(database, {
        "LICK_ARCHIVE_DATABASE_URL": _url(db.owner_dsn),
        "LICK_ARCHIVE_DATABASE_QUERY_URL": _url(db.query_dsn),
        "LICK_ARCHIVE_INGEST_ROOTS": str(root),
        "LICK_ARCHIVE_DOWNLOADS_TAR_BURST": "100000",
        # the disabled account's refusals would otherwise throttle it (429)
        "LICK_ARCHIVE_AUTH_MAX_FAILED_LOGINS": "100000",
    }) as server:
        yield server, dataset


def _auth(dataset: LeakDataset, name: str) -> tuple[str, str] | None:
    return dataset.passwords.get(name)


def _seen(dataset: LeakDataset, name: str) -> frozenset[str]:
    return frozenset() if name in REFUSED_OVER_HTTP else dataset.visible_dids(name)


def _visible_status(name: str) -> int:
    return 401 if name in REFUSED_OVER_HTTP else 200


@pytest.mark.parametrize("name", NAMES)
def test_datalink_rows_and_error_text(matrix, name) -> None:
    server, dataset = matrix
    everything = [dataset.did(n) for n in sorted(ALL)]
    reply = httpx.post(f"{server.base_url}/datalink/links", auth=_auth(dataset, name),
                       data={"ID": [*everything, UNKNOWN]}, timeout=60)
    if name in REFUSED_OVER_HTTP:
        assert reply.status_code == 401
        return
    assert reply.status_code == 200
    root = etree.fromstring(reply.content)
    schema_for(root.nsmap[None]).assertValid(root)
    ns = "{http://www.ivoa.net/xml/VOTable/v1.3}"
    rows = [[td.text or "" for td in tr.iter(f"{ns}TD")] for tr in root.iter(f"{ns}TR")]
    expected = dataset.visible_dids(name)
    linked = {row[0] for row in rows if row[5] == "#this" and row[1]}
    assert linked == expected
    errors = {row[0]: row[3] for row in rows if row[3]}
    assert set(errors) == (set(everything) - expected) | {UNKNOWN}
    assert len(set(errors.values())) == 1  # one text for hidden and unknown alike
    # nothing in the document names a dataset outside the expected ones, except the
    # identifiers asked for, echoed in the ID column
    named = set(re.findall(r"leak%3F(\w+)", reply.text)) | set(
        re.findall(r"leak\?(\w+)", " ".join(row[4] for row in rows)))
    assert {dataset.did(n) for n in named} <= expected
    calibrations = {row[1].rsplit("leak%3F", 1)[1] for row in rows
                    if row[5] in ("#bias", "#flat", "#calibration")}
    assert {dataset.did(n) for n in calibrations} <= expected
    if "alice_only" in EXPECTED[name] and "public_old" in EXPECTED[name]:
        assert "alice_only" in calibrations


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("path", ["/data/file", "/data/header", "/data/preview"])
def test_files_headers_previews(matrix, name, path) -> None:
    server, dataset = matrix
    auth = _auth(dataset, name)
    with httpx.Client(base_url=server.base_url, auth=auth, timeout=60) as client:
        absent = client.get(path, params={"ID": UNKNOWN})
        for row in sorted(ALL):
            reply = client.get(path, params={"ID": dataset.did(row)})
            if dataset.did(row) in _seen(dataset, name):
                assert reply.status_code == 200, (row, reply.text)
            else:
                hidden = 401 if auth is None or name in REFUSED_OVER_HTTP else 404
                assert reply.status_code == absent.status_code == hidden, row
                assert without_request_id(reply.content) == \
                    without_request_id(absent.content), row
                if hidden == 401:
                    assert "www-authenticate" in reply.headers


@pytest.mark.parametrize("name", NAMES)
def test_tarballs(matrix, name) -> None:
    server, dataset = matrix
    auth = _auth(dataset, name)
    seen = sorted(_seen(dataset, name))
    with httpx.Client(base_url=server.base_url, auth=auth, timeout=60) as client:
        if seen:
            reply = client.post("/data/tar", data={"ID": seen})
            assert reply.status_code == 200
            with tarfile.open(fileobj=io.BytesIO(reply.content)) as tar:
                names = {Path(m.name).stem for m in tar.getmembers()}
            assert {dataset.did(n) for n in names} == set(seen)
        absent = client.post("/data/tar", data={"ID": [*seen, UNKNOWN]})
        for row in sorted(ALL):
            if dataset.did(row) in seen:
                continue
            reply = client.post("/data/tar", data={"ID": [*seen, dataset.did(row)]})
            assert reply.status_code == absent.status_code != 200, row
            assert without_request_id(reply.content).replace(
                quote(dataset.did(row)).encode(), b"") == without_request_id(
                absent.content).replace(quote(UNKNOWN).encode(), b""), row
        query = client.post("/data/tar", data={
            "QUERY": "SELECT obs_publisher_did FROM ivoa.obscore"})
        if name in REFUSED_OVER_HTTP:
            assert query.status_code == 401
        else:
            with tarfile.open(fileobj=io.BytesIO(query.content)) as tar:
                names = {Path(m.name).stem for m in tar.getmembers()}
            assert {dataset.did(n) for n in names} == set(seen)


def test_released_rows_open_to_anonymous(matrix) -> None:
    server, dataset = matrix
    did = dataset.did("alice_only")
    url = f"{server.base_url}/data/file"
    assert httpx.get(url, params={"ID": did}).status_code == 401
    dsn = _owner_dsn(server)
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            for table, column in (("lick.files", "release_date"),
                                  ("ivoa.obscore", "obs_release_date")):
                cur.execute(f"UPDATE {table} SET {column} = now() - interval '3 days' "
                            "WHERE obs_publisher_did = %s", (did,))
        reply = httpx.get(url, params={"ID": did})
        assert reply.status_code == 200
        assert reply.headers["cache-control"].startswith("public")
        links = httpx.get(f"{server.base_url}/datalink/links", params={"ID": did})
        assert f"/data/file?ID={quote(did, safe='')}" in links.text
    finally:
        release = next(r for r in ROWS if r.name == "alice_only").release_date()
        with conn, conn.cursor() as cur:
            for table, column in (("lick.files", "release_date"),
                                  ("ivoa.obscore", "obs_release_date")):
                cur.execute(f"UPDATE {table} SET {column} = %s WHERE obs_publisher_did = %s",
                            (release, did))
        conn.close()
    assert httpx.get(url, params={"ID": did}).status_code == 401


def _owner_dsn(server: RunningServer) -> str:
    return str(server.database.new_database("datalink_leaks").owner_dsn)
