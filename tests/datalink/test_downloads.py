"""Downloads over HTTP: files (ranges, validators), headers, previews, tarballs."""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from astropy.io import fits
from PIL import Image

from tests.conftest import RunningServer, fetch, running_server, without_request_id
from tests.datalink.helpers import PROPRIETARY, PUBLIC, UNKNOWN, one, owner_auth


def _row(database, did: str) -> tuple[str, int, str]:
    (path, size, checksum) = fetch(database.owner_dsn, "SELECT path, file_size, checksum "
                                   "FROM lick.files WHERE obs_publisher_did = %s", (did,))[0]
    return path, size, checksum


@pytest.fixture(scope="module")
def public(server, archive) -> tuple[str, bytes]:
    did, _ = one(server.database, f"{PUBLIC} AND o.dataproduct_type = 'image' AND "
                 "f.frame_type = 'science'")
    path, size, _ = _row(server.database, did)
    content = (archive.root / path).read_bytes()
    assert len(content) == size > 1000
    return did, content


def _get(server, path: str, did: str, **kwargs) -> httpx.Response:
    return httpx.get(f"{server.base_url}{path}", params={"ID": did}, timeout=60, **kwargs)


def test_whole_file(server, public) -> None:
    did, content = public
    reply = _get(server, "/data/file", did)
    assert reply.status_code == 200
    assert reply.content == content
    assert reply.headers["content-type"] == "application/fits"
    assert reply.headers["content-length"] == str(len(content))
    _, _, checksum = _row(server.database, did)
    assert reply.headers["etag"] == f'"{checksum}"'
    assert reply.headers["last-modified"].endswith("GMT")
    assert reply.headers["accept-ranges"] == "bytes"
    assert reply.headers["cache-control"].startswith("public")
    name = did.rsplit("/", 1)[1]
    assert reply.headers["content-disposition"] == f'attachment; filename="{name}"'
    with fits.open(io.BytesIO(reply.content)) as hdus:
        assert hdus[0].header["SIMPLE"]
    head = httpx.head(f"{server.base_url}/data/file", params={"ID": did})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(content))


def test_ranges(server, public) -> None:
    did, content = public
    size = len(content)
    first = _get(server, "/data/file", did, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and first.content == content[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{size}"
    suffix = _get(server, "/data/file", did, headers={"Range": "bytes=-500"})
    assert suffix.status_code == 206 and suffix.content == content[-500:]
    assert suffix.headers["content-range"] == f"bytes {size - 500}-{size - 1}/{size}"
    tail = _get(server, "/data/file", did, headers={"Range": f"bytes={size - 10}-"})
    assert tail.status_code == 206 and tail.content == content[-10:]
    beyond_end = _get(server, "/data/file", did, headers={"Range": f"bytes=10-{size * 2}"})
    assert beyond_end.status_code == 206 and beyond_end.content == content[10:]
    for bad in (f"bytes={size}-", f"bytes={size + 100}-{size + 200}", "bytes=5-1",
                "bytes=x-y", "bytes=", "bytes=-0", "bytes=--1", "bytes=١-٢"):
        refused = _get(server, "/data/file", did, headers={"Range": bad.encode()})
        assert refused.status_code == 416, bad
        assert refused.headers["content-range"] == f"bytes */{size}"
    ignored = _get(server, "/data/file", did, headers={"Range": "pages=1-2"})
    assert ignored.status_code == 200 and ignored.content == content


def test_multiple_ranges(server, public) -> None:
    did, content = public
    reply = _get(server, "/data/file", did, headers={"Range": "bytes=0-9, 100-109, -5"})
    assert reply.status_code == 206
    media_type, _, boundary = reply.headers["content-type"].partition("; boundary=")
    assert media_type == "multipart/byteranges"
    assert int(reply.headers["content-length"]) == len(reply.content)
    parts = reply.content.split(f"--{boundary}".encode())[1:-1]
    bodies = [part.split(b"\r\n\r\n", 1)[1][:-2] for part in parts]
    assert bodies == [content[:10], content[100:110], content[-5:]]
    assert b"Content-Range: bytes 100-109/" in parts[1]
    # overlapping ranges are merged into one
    merged = _get(server, "/data/file", did, headers={"Range": "bytes=0-9,5-19"})
    assert merged.status_code == 206 and merged.content == content[:20]


def test_validators(server, public) -> None:
    did, content = public
    first = _get(server, "/data/file", did)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert _get(server, "/data/file", did, headers={"If-None-Match": etag}).status_code == 304
    assert _get(server, "/data/file", did,
                headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
    assert _get(server, "/data/file", did,
                headers={"If-None-Match": '"other"'}).status_code == 200
    assert _get(server, "/data/file", did,
                headers={"If-Modified-Since": modified}).status_code == 304
    stale = _get(server, "/data/file", did, headers={"Range": "bytes=0-9",
                                                     "If-Range": '"an-old-etag"'})
    assert stale.status_code == 200 and stale.content == content
    fresh = _get(server, "/data/file", did, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.content == content[:10]


def test_header_as_text(server, public) -> None:
    did, _ = public
    reply = _get(server, "/data/header", did)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.text.startswith("SIMPLE  =")
    assert _get(server, "/data/header", did,
                headers={"If-None-Match": reply.headers["etag"]}).status_code == 304


def test_access_rule(server, archive) -> None:
    hidden, obid = one(server.database, PROPRIETARY)
    other = next(o for o in archive.schedule["observers"] if o["obid"] != obid)
    other_auth = (other["email"], other["password"])
    for path in ("/data/file", "/data/header", "/data/preview"):
        anonymous = _get(server, path, hidden)
        unknown = _get(server, path, UNKNOWN)
        assert anonymous.status_code == unknown.status_code == 401
        assert "Basic" in anonymous.headers["www-authenticate"]
        assert without_request_id(anonymous.content) == without_request_id(unknown.content)
        assert b"logging in" in anonymous.content
        denied = _get(server, path, hidden, auth=other_auth)
        unknown = _get(server, path, UNKNOWN, auth=other_auth)
        assert denied.status_code == unknown.status_code == 404
        assert without_request_id(denied.content) == without_request_id(unknown.content)
    mine = _get(server, "/data/file", hidden, auth=owner_auth(archive, obid))
    assert mine.status_code == 200 and mine.headers["cache-control"] == "private"
    # public data asked for with credentials is private too: the answer names the login
    public, _ = one(server.database, PUBLIC)
    assert _get(server, "/data/file", public,
                auth=other_auth).headers["cache-control"] == "private"
    path, _, _ = _row(server.database, hidden)
    assert mine.content == (archive.root / path).read_bytes()


def test_missing_id_and_traversal(server) -> None:
    assert httpx.get(f"{server.base_url}/data/file").status_code == 400
    for did in ("../../../etc/passwd", "/etc/passwd", "2019-05/02/shane/b607.fits"):
        assert _get(server, "/data/file", did).status_code == 401


# -- previews ---------------------------------------------------------------------------


def _images(database, count: int) -> list[str]:
    rows = fetch(database.owner_dsn,
                 "SELECT f.obs_publisher_did FROM lick.files f WHERE "
                 f"{PUBLIC} AND f.filename LIKE '%%.fits' AND f.file_size > 0 AND "
                 "f.header ~ '(?n)^NAXIS {3}= +2' AND f.ingest_flags = '' ORDER BY f.path "
                 f"LIMIT {count}")
    return [r[0] for r in rows]


def test_preview_rendered_and_cached(server, archive) -> None:
    (did,) = _images(server.database, 1)
    first = _get(server, "/data/preview", did)
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(first.content))
    assert image.mode == "L" and max(image.size) <= 1024
    cache = Path(server.database.settings.service.data_dir) / "previews"
    cached = list(cache.rglob("*.png"))
    assert cached
    again = _get(server, "/data/preview", did)
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert "content-length" in again.headers  # the cached file, streamed
    assert _get(server, "/data/preview", did,
                headers={"If-None-Match": first.headers["etag"]}).status_code == 304


@pytest.fixture(scope="module")
def small(database, archive) -> Iterator[RunningServer]:
    """A server with tiny limits: preview cache, tarball size/count, rate, threads."""
    with running_server(database, {
        "LICK_ARCHIVE_SERVICE_DATA_DIR": str(Path(database.settings.service.data_dir)),
        "LICK_ARCHIVE_DOWNLOADS_PREVIEW_CACHE_BYTES": "60000",
        "LICK_ARCHIVE_DOWNLOADS_PREVIEW_MAX_SIZE": "128",
        "LICK_ARCHIVE_DOWNLOADS_TAR_MAX_FILES": "4",
        "LICK_ARCHIVE_DOWNLOADS_TAR_BURST": "3",
        "LICK_ARCHIVE_DOWNLOADS_TAR_PER_HOUR": "1",
        "LICK_ARCHIVE_DOWNLOADS_THREADS": "2",
        "LICK_ARCHIVE_DOWNLOADS_READ_CHUNK_BYTES": "4096",
    }) as running:
        yield running


def test_preview_cache_is_capped(small, archive) -> None:
    cache = Path(small.database.settings.service.data_dir) / "previews"
    for did in _images(small.database, 25):
        reply = _get(small, "/data/preview", did)
        assert reply.status_code == 200, reply.text
        total = sum(p.stat().st_size for p in cache.rglob("*.png"))
        assert total <= 60000 + len(reply.content)
    assert not list(cache.rglob(".partial-*"))


# -- tarballs ---------------------------------------------------------------------------


def _public_files(database, count: int) -> list[tuple[str, str]]:
    rows = fetch(database.owner_dsn, f"SELECT f.obs_publisher_did, f.path FROM lick.files f "
                 f"WHERE {PUBLIC} ORDER BY f.path LIMIT {count}")
    return [(r[0], r[1]) for r in rows]


def _members(content: bytes, mode: str = "r:") -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(content), mode=mode) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def tars(database, archive) -> Iterator[RunningServer]:
    """A server of its own: the tarball rate limit counts requests per client."""
    with running_server(database, {"LICK_ARCHIVE_DOWNLOADS_TAR_BURST": "1000"}) as running:
        yield running


def test_tarball_of_ids(tars, archive) -> None:
    server = tars
    files = _public_files(server.database, 6)
    reply = httpx.post(f"{server.base_url}/data/tar", data={"ID": [d for d, _ in files]},
                       timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/x-tar"
    assert int(reply.headers["content-length"]) == len(reply.content)
    assert 'filename="lick-archive.tar"' in reply.headers["content-disposition"]
    members = _members(reply.content)
    for _, path in files:
        month, day, directory, name = path.split("/")
        assert members[f"{month}-{day}-{directory}/{name}"] == (archive.root / path).read_bytes()
    assert len(members) == 6
    gz = httpx.post(f"{server.base_url}/data/tar", timeout=60,
                    data={"ID": [d for d, _ in files], "FORMAT": "tar.gz"})
    assert gz.status_code == 200 and gz.headers["content-type"] == "application/gzip"
    assert _members(gz.content, "r:gz") == members


def test_tarball_of_a_query(tars, archive) -> None:
    server = tars
    query = ("SELECT TOP 5 obs_publisher_did FROM ivoa.obscore WHERE instrument_name LIKE "
             "'Nickel%' ORDER BY obs_publisher_did")
    reply = httpx.get(f"{server.base_url}/data/tar", params={"QUERY": query}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert len(_members(reply.content)) == 5
    wrong = httpx.get(f"{server.base_url}/data/tar", params={
        "QUERY": "SELECT TOP 5 obs_id FROM ivoa.obscore"})
    assert wrong.status_code == 400 and b"obs_publisher_did" in wrong.content
    bad = httpx.get(f"{server.base_url}/data/tar", params={"QUERY": "SELEKT"})
    assert bad.status_code == 400 and b"UsageFault" in bad.content


def test_tarball_naming_a_hidden_file_fails_whole(tars, archive) -> None:
    server = tars
    hidden, obid = one(server.database, PROPRIETARY)
    files = [d for d, _ in _public_files(server.database, 3)]
    anonymous = httpx.post(f"{server.base_url}/data/tar", data={"ID": [*files, hidden]})
    unknown = httpx.post(f"{server.base_url}/data/tar", data={"ID": [*files, UNKNOWN]})
    assert anonymous.status_code == unknown.status_code == 401
    assert without_request_id(anonymous.content) == without_request_id(unknown.content)
    assert "www-authenticate" in anonymous.headers
    owner = owner_auth(archive, obid)
    mine = httpx.post(f"{server.base_url}/data/tar", data={"ID": [*files, hidden]},
                      auth=owner, timeout=60)
    assert mine.status_code == 200 and len(_members(mine.content)) == 4


def test_tarball_limits_and_rate(small, archive) -> None:
    files = [d for d, _ in _public_files(small.database, 5)]
    user = archive.schedule["observers"][0]
    auth = (user["email"], user["password"])
    too_many = httpx.post(f"{small.base_url}/data/tar", data={"ID": files}, auth=auth)
    assert too_many.status_code == 400 and b"at most 4 files" in too_many.content
    query = httpx.post(f"{small.base_url}/data/tar", auth=auth, data={
        "QUERY": "SELECT obs_publisher_did FROM ivoa.obscore"})
    assert query.status_code == 400 and b"at most 4 files" in query.content
    empty = httpx.post(f"{small.base_url}/data/tar", data={}, auth=auth)
    assert empty.status_code == 400
    # refusals (after the rate check) gave their token back: the burst of three is whole
    codes = [httpx.post(f"{small.base_url}/data/tar", data={"ID": files[:2]},
                        auth=auth).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = httpx.post(f"{small.base_url}/data/tar", data={"ID": files[:2]}, auth=auth)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    # another user has a bucket of their own
    other = archive.schedule["observers"][1]
    assert httpx.post(f"{small.base_url}/data/tar", data={"ID": files[:2]},
                      auth=(other["email"], other["password"])).status_code == 200


def test_more_downloads_than_threads(small, archive) -> None:
    """2 file threads, 4 KiB a chunk, 16 concurrent downloads: all complete intact."""
    did, _ = one(small.database, f"{PUBLIC} AND f.file_size > 50000")
    path, _, _ = _row(small.database, did)
    content = (archive.root / path).read_bytes()
    results: list[bytes] = []
    errors: list[BaseException] = []

    def download(index: int) -> None:
        try:
            headers = {"Range": "bytes=1000-"} if index % 2 else {}
            reply = _get(small, "/data/file", did, headers=headers)
            results.append(reply.content if index % 2 == 0 else content[:1000] + reply.content)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=download, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(results) == 16
    assert all(result == content for result in results)
