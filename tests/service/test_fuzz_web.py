"""Hostile input on the archive pages (``/search``, ``/dataset``, ``/adql``, ``/nights``):
never a 500.

Reuses the catalogue of trouble, the request encoder, the credentials and the answer
invariants of tests/service/test_fuzz.py.  Besides those, values the search form
knows (and page keys, well-formed and damaged) reach the deeper paths: a page key
that does not fit its sort column, a position at a pole, every sort field.  A bad
value answers 400 with the form, never a stack trace.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.service.test_fuzz import FUZZ, QUERIES, TROUBLE, check, credentials, encode
from vo_service.services import search as s

KNOWN = {
    "object": ["NGC", "ngc 7", "%", "_", "\\", "O'Brien", "HD 84937"],
    "object_match": ["exact", "starts", "contains", "EXACT"],
    "match_case": ["1", "on", ""],
    "night_from": ["2019-05-02", "2007-01-01", "0001-01-01", "9999-12-31", "2019-02-29"],
    "night_to": ["2019-05-02", "2030-01-01", "2000-01-01"],
    "path": ["2019-05/", "b1.fits", "../", "/", "%", "2019-05/02/shane/b101.fits"],
    "path_match": ["exact", "starts"],
    "ra": ["12:29:46.7", "0", "359.999", "23:59:59.999", "24:00:00", "-1", "12h", "1e3"],
    "dec": ["+08:00:01", "-90", "90", "-89:59:59.9", "+90:00:00.1", "0"],
    "radius": ["1", "0", "600", "1e-9", "36000", "-1"],
    "radius_unit": [*list(s.RADIUS_UNITS), "pc"],
    "instrument": [*list(s.INSTRUMENTS), "KAST_BLUE"],
    "frame_type": [*list(s.FRAME_TYPES), "Science"],
    "field": [f.name for f in s.FIELDS] + ["header", "owner_ids"],
    "sort": [*list(s.SORT_FIELDS), "header", "owner_ids", "1"],
    "order": ["asc", "desc", "ASC"],
    "size": ["1", "1000", "1001", "0", "-5", "50.0"],
    "coords": list(s.COORD_FORMATS),
    "count": ["1", ""],
}


def _key(value: object, did: object) -> str:
    raw = json.dumps([value, did]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


KEYS = [_key(v, d) for v, d in [
    ("2019-05-02", "ivo://x"), ("not a date", "ivo://x"), (1.5, "ivo://x"), (None, ""),
    (1e308, "x"), ("a" * 3000, "x"), ({"a": 1}, "x"), (True, "x"), ("x", None), ([], []),
    ("2019-05-02 01:02:03", "ivo://lick.archive.example/lick?a"), ("\x00", "\x00")]] + [
    "", "!!!", "W10", "WyJ4Il0", "x" * 5000]

@pytest.fixture(scope="module")
def client_web(server, archive) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60, follow_redirects=False) as c:
        yield c


search_pairs = st.lists(st.one_of(
    st.sampled_from(sorted(KNOWN)).flatmap(
        lambda name: st.tuples(st.just(name), st.one_of(st.sampled_from(KNOWN[name]),
                                                        st.sampled_from(TROUBLE)))),
    st.tuples(st.sampled_from(["after", "before"]), st.sampled_from(KEYS)),
    st.tuples(st.sampled_from(["ID", "x", "", "Object"]), st.sampled_from(TROUBLE)),
), max_size=8)


@FUZZ
@given(pairs=search_pairs, auth=credentials())
def test_search(client_web, server, pairs, auth) -> None:
    reply = client_web.get("/search?" + encode(pairs), headers=auth)
    check(reply, server)
    if reply.status_code == 400:
        assert "field-error" in reply.text or "not accepted" in reply.text, reply.text[:500]


@FUZZ
@given(did=st.one_of(st.sampled_from(TROUBLE),
                     st.sampled_from(["ivo://lick.archive.example/lick?../../etc/passwd",
                                      "ivo://lick.archive.example/lick?2019-05/02/shane/b1.fits"])),
       name=st.sampled_from(["ID", "id", "Id"]), auth=credentials())
def test_dataset(client_web, server, did, name, auth) -> None:
    check(client_web.get("/dataset?" + encode([(name, did)]), headers=auth), server)


@FUZZ
@given(pairs=st.lists(st.tuples(st.sampled_from(["query", "table", "maxrec", "run", "QUERY"]),
                                st.one_of(st.sampled_from(TROUBLE), st.sampled_from(QUERIES),
                                          st.sampled_from(["1", "ivoa.obscore", "lick.files",
                                                           "0", "99999"]))), max_size=5),
       auth=credentials())
def test_adql_page(client_web, server, pairs, auth) -> None:
    check(client_web.get("/adql?" + encode(pairs), headers=auth), server)


@FUZZ
@given(pairs=st.lists(st.tuples(st.sampled_from(["query", "job_id", "csrf_token"]),
                                st.sampled_from(TROUBLE)), max_size=4),
       path=st.sampled_from(["/adql/jobs", "/adql/jobs/delete", "/nights"]),
       auth=credentials())
def test_adql_forms_and_nights(client_web, server, pairs, path, auth) -> None:
    if path == "/nights":
        reply = client_web.get(path + "?" + encode(pairs), headers=auth)
    else:
        reply = client_web.post(path, content=encode(pairs), headers={
            **auth, "Content-Type": "application/x-www-form-urlencoded"})
    check(reply, server)


def test_search_pages_with_every_sort_key(client_web, server, archive) -> None:
    """Follow one next link per sort field and direction: real keys of every type."""
    import html
    import re

    for sort in s.SORT_FIELDS:
        for order in ("asc", "desc"):
            reply = client_web.get(f"/search?sort={sort}&order={order}&size=3&field={sort}"
                                   if sort in s.FIELD_BY_NAME else
                                   f"/search?sort={sort}&order={order}&size=3")
            check(reply, server)
            assert reply.status_code == 200, (sort, order, reply.text[:300])
            nxt = re.search(r'href="/search(\?[^"]*)" rel="next"', reply.text)
            assert nxt, (sort, order)
            again = client_web.get("/search" + html.unescape(nxt.group(1)))
            assert again.status_code == 200, (sort, order, again.text[:300])
