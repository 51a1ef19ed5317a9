"""Hostile input on every DataLink and download parameter: never a 500.

Reuses the catalogue of trouble, the request encoder, the credentials and the answer
invariants of tests/service/test_fuzz.py, against a server of its own (tarball rate
limit lifted: the fuzzer is one client).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import RunningServer, running_server
from tests.service.test_fuzz import FUZZ, TROUBLE, check, credentials, encode, param_lists

DIDS = ["ivo://lick.archive.example/lick?2016-08/16/nickel/d100.fits",
        "ivo://lick.archive.example/lick?../../../etc/passwd", "../../etc/passwd", "/etc/passwd",
        "ivo://lick.archive.example/lick?2016-08/16/nickel/d100.fits\x00", "%2e%2e%2f"]
LINKS = ["ID", "RESPONSEFORMAT", "REQUEST", "MAXREC"]
DATA = ["ID", "FORMAT", "QUERY", "LANG"]
RANGES = ["bytes=0-0", "bytes=-1", "bytes=0-", "bytes=1-0", "bytes=-", "bytes=,", "bytes=0-1,"
          * 50, "bytes=99999999999999999999-", "bytes=" + "9" * 5000, "bytes=\u0661-\u0662",
          "bytes=0-9, 5-7, -3", "bytes = 0 - 9", "BYTES=0-1", "items=0-1", "bytes=0x10-0x20"]


@pytest.fixture(scope="module")
def target(database, archive) -> Iterator[RunningServer]:
    with running_server(database, {"LICK_ARCHIVE_DOWNLOADS_TAR_BURST": "100000",
                                   "LICK_ARCHIVE_DOWNLOADS_TAR_MAX_FILES": "50"}) as server:
        yield server


@pytest.fixture(scope="module")
def client(target: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.base_url, timeout=60, follow_redirects=False) as c:
        yield c


ids = st.lists(st.tuples(st.just("ID"), st.one_of(st.sampled_from(DIDS),
                                                  st.sampled_from(TROUBLE))), max_size=4)


@FUZZ
@given(pairs=param_lists(LINKS), extra=ids, method=st.sampled_from(["GET", "POST"]),
       auth=credentials(), accept=st.sampled_from(["", "*/*", "text/html", "\u00e9"]))
def test_links(client, target, pairs, extra, method, auth, accept) -> None:
    headers = {**auth, "Accept": accept.encode()}
    if method == "GET":
        reply = client.get("/datalink/links?" + encode([*extra, *pairs]), headers=headers)
    else:
        reply = client.post("/datalink/links", content=encode([*extra, *pairs]), headers={
            **headers, "Content-Type": "application/x-www-form-urlencoded"})
    check(reply, target)


@FUZZ
@given(pairs=param_lists(DATA), extra=ids,
       path=st.sampled_from(["/data/file", "/data/header", "/data/preview"]),
       auth=credentials(),
       range_=st.one_of(st.none(), st.sampled_from(RANGES)),
       validator=st.sampled_from([{}, {"If-None-Match": "*"}, {"If-None-Match": '"x", W/"y"'},
                                  {"If-Modified-Since": "not a date"},
                                  {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"},
                                  {"If-Range": "yesterday"}, {"If-Range": '"x"'}]))
def test_files(client, target, pairs, extra, path, auth, range_, validator) -> None:
    headers: dict[str, bytes] = {**auth, **{k: v.encode() for k, v in validator.items()}}
    if range_ is not None:
        headers["Range"] = range_.encode()
    reply = client.get(f"{path}?" + encode([*extra, *pairs]), headers=headers)
    check(reply, target)


@FUZZ
@given(pairs=param_lists(DATA), extra=ids, method=st.sampled_from(["GET", "POST"]),
       auth=credentials(),
       query=st.sampled_from([None, "SELECT TOP 3 obs_publisher_did FROM ivoa.obscore",
                              "SELECT obs_id FROM ivoa.obscore", "SELECT 1/0 FROM ivoa.obscore",
                              "SELECT TOP 3 obs_publisher_did, obs_publisher_did AS "
                              "obs_publisher_did FROM ivoa.obscore", "\x00", "SELEKT"]))
def test_tarballs(client, target, pairs, extra, method, auth, query) -> None:
    pairs = [*extra, *pairs] + ([("QUERY", query)] if query is not None else [])
    if method == "GET":
        reply = client.get("/data/tar?" + encode(pairs), headers=auth)
    else:
        reply = client.post("/data/tar", content=encode(pairs), headers={
            **auth, "Content-Type": "application/x-www-form-urlencoded"})
    check(reply, target)
