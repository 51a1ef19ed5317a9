"""Hostile input on every route and parameter: never a 500, always a clear error document.

Hypothesis draws requests — a route, its parameters (names in any case, repeated,
unknown), values from a catalogue of trouble (NUL and other control characters,
invalid UTF-8, lone surrogates, huge and non-finite numbers, very long strings, SQL
and XML metacharacters, malformed VOTable uploads), hostile credentials and cookies —
and sends them to a real server.  Every answer must be below 500 (503 with
Retry-After is allowed: limits), never leak a server path or a traceback, and every
DALI error must be a well-formed VOTable with QUERY_STATUS=ERROR and a message.
"""

from __future__ import annotations

import base64
import contextlib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.conftest import RunningServer, running_server
from tests.xsd import validate

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
EXAMPLES = 60  # per test; the suite has about ten of them

TROUBLE = [
    "", " ", "\x00", "a\x00b", "\x01\x02\x1b[31m", "\r\n", "\t", "\x7f", "\ufffe", "\uffff",
    "\u202e", "😀", "é", "\u0000SELECT", "NaN", "nan", "inf", "-inf", "Infinity", "1e308",
    "1e999", "-1e999", "-0", "0", "-1", "1", "9" * 30, str(2**63), str(2**64), str(-2**63 - 1),
    "0x10", "1_000", "١٢٣", "'", "''", "\"", "\\", "%", "%00", "; DROP TABLE x; --",
    "' OR '1'='1", "<x>", "]]>", "&amp;", "&#0;", "{}", "[]", "null", "None", "true",
    "a" * 5000, "SELECT " + "(" * 300 + "1" + ")" * 300, "2026-13-45T99:99:99",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00", "99999-01-01", "RUN", "ABORT",
    "ADQL", "PENDING", "votable", "csv", "fits", "application/x-votable+xml;serialization=TD",
]
QUERIES = [
    "SELECT TOP 1 obs_id FROM ivoa.obscore",
    "SELECT POINT('ICRS', 1, 2) AS p, CIRCLE('ICRS', 1, 2, 3) AS c FROM ivoa.obscore",
    "SELECT ivo_healpix_index(10, s_ra, s_dec) FROM ivoa.obscore",
    "SELECT ivo_healpix_index(10, 1e999, 0) FROM ivoa.obscore",
    "SELECT TOP 99999999999999999999 * FROM ivoa.obscore",
    "SELECT * FROM ivoa.obscore WHERE s_ra = 1e999",
    "SELECT * FROM TAP_UPLOAD.t",
    "SELECT 1/0 FROM ivoa.obscore",
    "SELECT CAST('x' AS INTEGER) FROM ivoa.obscore",
    "SELECT * FROM ivoa.obscore WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), "
    "CIRCLE('ICRS', 10, 91, -5))",
]
BAD_VOTABLES = [
    b"", b"\x00\xff\xfe", b"<VOTABLE>", b"not xml at all",
    b'<?xml version="1.0"?><VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
    b'<RESOURCE><TABLE><FIELD name="a" datatype="int" arraysize="2x3"/><DATA><TABLEDATA>'
    b"<TR><TD>1 2 3 4 5 6</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>",
    b'<?xml version="1.0"?><VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
    b'<RESOURCE><TABLE><FIELD name="a" datatype="short"/><FIELD name="t" datatype="char" '
    b'arraysize="*" xtype="timestamp"/><FIELD name="p" datatype="double" arraysize="2" '
    b'xtype="point"/><DATA><TABLEDATA><TR><TD>99999999</TD><TD>0000-00-00</TD>'
    b"<TD>inf 95</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b'<VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
    b'<FIELD name="a" datatype="char" arraysize="*"/><DATA><TABLEDATA><TR><TD>&e;</TD>'
    b"</TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>",
]

values = st.one_of(st.sampled_from(TROUBLE), st.sampled_from(QUERIES),
                   st.text(max_size=40), st.integers().map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr))


def names(known: list[str]) -> st.SearchStrategy[str]:
    """A known parameter name in any case, or an odd one."""
    return st.one_of(
        st.sampled_from(known).flatmap(lambda n: st.sampled_from([n, n.lower(), n.title()])),
        st.sampled_from(["", "X\x00", "a b", "Q\nUERY", "😀", "x" * 300, "UPLOAD"]))


def param_lists(known: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.lists(st.tuples(names(known), values), max_size=6)


TAP = ["LANG", "QUERY", "MAXREC", "RESPONSEFORMAT", "FORMAT", "REQUEST", "UPLOAD", "RUNID"]
UWS = ["PHASE", "EXECUTIONDURATION", "DESTRUCTION", "ACTION", "WAIT", "AFTER", "LAST",
       "RUNID", "QUERY", "LANG"]


def sendable(headers: dict[str, str]) -> dict[str, bytes]:
    """Header values as UTF-8 bytes, minus those no HTTP client can send (control
    characters, edge whitespace: :func:`test_illegal_header_bytes` sends those raw)."""
    out = {}
    for name, value in headers.items():
        raw = value.encode("utf-8", "surrogatepass")
        if raw == raw.strip() and not any((b < 32 and b != 9) or b == 127 for b in raw):
            out[name] = raw
    return out


def credentials() -> st.SearchStrategy[dict[str, bytes]]:
    def basic(raw: bytes) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    return st.one_of(
        st.just({}),
        st.binary(max_size=60).map(basic),
        st.sampled_from(["josé@lick.example:pässwörd", "a\x00b:c", "\x00:\x00", ":",
                         "x" * 3000 + ":y", "日本:語"]).map(lambda s: basic(s.encode())),
        st.sampled_from([b"\xff\xfe:\xff", b"caf\xe9:\xe9t\xe9"]).map(basic),
        st.sampled_from(["Bearer ", "Bearer lick_\x01", "Bearer " + "x" * 5000, "Basic ",
                         "Basic !!!", "Negotiate abc", "Bearer lick_abc def"]).map(
            lambda v: {"Authorization": v}),
        st.sampled_from(["lick_session=" + "x" * 500, "lick_session=", "lick_session=%00",
                         "lick_session=\u00e9"]).map(lambda v: {"Cookie": v}),
    ).map(sendable)


@pytest.fixture(scope="module")
def target(database, archive) -> Iterator[RunningServer]:
    with running_server(database) as server:
        yield server
        import os
        if os.environ.get("FUZZ_LOG"):
            Path(os.environ["FUZZ_LOG"]).write_text(server.log())


@pytest.fixture(scope="module")
def client(target: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.base_url, timeout=60, follow_redirects=False) as c:
        yield c


@pytest.fixture(scope="module")
def job(client: httpx.Client) -> str:
    reply = client.post("/tap/async", data={"LANG": "ADQL", "QUERY": QUERIES[0]})
    assert reply.status_code == 303
    return str(reply.headers["location"]).rsplit("/", 1)[1]


def encode(pairs: list[tuple[str, str]]) -> str:
    """Form encoding that keeps what httpx would refuse (surrogates become bytes)."""
    return "&".join(
        f"{urllib.parse.quote(n.encode('utf-8', 'surrogatepass'))}="
        f"{urllib.parse.quote(v.encode('utf-8', 'surrogatepass'))}" for n, v in pairs)


def check(reply: httpx.Response, target: RunningServer) -> None:
    """The invariants of every answer."""
    assert reply.status_code < 500 or reply.status_code == 503, \
        (reply.status_code, reply.request.url, reply.text[:500])
    if reply.status_code == 503:
        assert "retry-after" in reply.headers, reply.text[:300]
    body = reply.text
    assert "Traceback" not in body and "/work/" not in body and "site-packages" not in body
    data_dir = str(target.database.settings.service.data_dir)
    assert data_dir not in body, body[:500]
    if reply.status_code >= 400 and "votable" in reply.headers.get("content-type", ""):
        root = etree.fromstring(reply.content)
        info = root.find(f".//{VOT}INFO[@name='QUERY_STATUS']")
        assert info is not None and info.get("value") == "ERROR", body[:300]
        assert (info.text or "").strip(), "an error without a message"


FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(pairs=param_lists(TAP), method=st.sampled_from(["GET", "POST"]), auth=credentials())
def test_tap_sync(client, target, pairs, method, auth) -> None:
    pairs = [("LANG", "ADQL"), ("QUERY", QUERIES[0]), *pairs]
    if method == "GET":
        reply = client.get("/tap/sync?" + encode(pairs), headers=auth)
    else:
        reply = client.post("/tap/sync", content=encode(pairs), headers={
            **auth, "Content-Type": "application/x-www-form-urlencoded"})
    check(reply, target)


@FUZZ
@given(pairs=param_lists(TAP), upload=st.sampled_from(BAD_VOTABLES),
       field=st.sampled_from(["t", "../t", "t\x00", "😀", "x" * 200]))
def test_tap_sync_uploads(client, target, pairs, upload, field) -> None:
    data = dict([("LANG", "ADQL"), ("QUERY", "SELECT * FROM TAP_UPLOAD.t"),
                 ("UPLOAD", f"t,param:{field}")] + [p for p in pairs if "\x00" not in p[0]])
    reply = client.post("/tap/sync", data=data, files={field: ("t.xml", upload, "text/xml")})
    check(reply, target)


@FUZZ
@given(pairs=param_lists(TAP + UWS), auth=credentials())
def test_uws_create_and_list(client, target, pairs, auth) -> None:
    check(client.post("/tap/async", content=encode(pairs), headers={
        **auth, "Content-Type": "application/x-www-form-urlencoded"}), target)
    check(client.get("/tap/async?" + encode(pairs), headers=auth), target)


@FUZZ
@given(pairs=param_lists(UWS + TAP),
       child=st.sampled_from(["", "/phase", "/executionduration", "/destruction", "/quote",
                              "/owner", "/error", "/parameters", "/results",
                              "/results/result", "/results/%00", "/results/..%2F..%2Fetc"]),
       method=st.sampled_from(["GET", "POST"]))
def test_uws_job_children(client, target, job, pairs, child, method) -> None:
    pairs = [(n, v) for n, v in pairs if n.upper() not in ("ACTION", "PHASE")
             or v not in ("DELETE", "ABORT")]  # keep the job for the other examples
    if method == "GET":
        reply = client.get(f"/tap/async/{job}{child}?" + encode(
            [(n, v) for n, v in pairs if n.upper() != "WAIT"]))
    else:
        reply = client.post(f"/tap/async/{job}{child}", content=encode(pairs), headers={
            "Content-Type": "application/x-www-form-urlencoded"})
    check(reply, target)


@FUZZ
@given(segment=st.sampled_from(["%00", "..", "%2e%2e%2f", "x" * 2000, "%ff%fe", "😀",
                                "abc%0d%0aSet-Cookie:x=1", "%ed%a0%80"]),
       route=st.sampled_from(["/tap/async/{}", "/tap/async/{}/phase", "/tap/tables/{}",
                              "/tap/{}", "/{}", "/web/{}", "/tap/async/{}/results/{}"]))
def test_odd_paths(client, target, segment, route) -> None:
    check(client.get(route.replace("{}", segment)), target)


@FUZZ
@given(pairs=param_lists(["detail", "DETAIL", "LANG"]),
       path=st.sampled_from(["/tap/tables", "/tap/tables/ivoa.obscore", "/tap/capabilities",
                             "/tap/availability", "/tap/examples", "/", "/web/style.css"]),
       auth=credentials())
def test_vosi_and_static(client, target, pairs, path, auth) -> None:
    check(client.get(path + "?" + encode(pairs), headers=auth), target)


@FUZZ
@given(pairs=param_lists(["email", "password", "csrf_token", "next", "label", "expires",
                          "prefix", "login", "active", "user", "group", "did", "night"]),
       path=st.sampled_from(["/login", "/logout", "/account", "/account/tokens",
                             "/account/tokens/revoke", "/admin", "/admin/users",
                             "/admin/users/active", "/admin/grants", "/admin/grants/revoke"]),
       method=st.sampled_from(["GET", "POST"]), auth=credentials())
def test_pages(client, target, pairs, path, method, auth) -> None:
    headers = {**auth, "Cookie": b"lick_login_csrf=" + b"a" * 30}
    if method == "GET":
        reply = client.get(path + "?" + encode(pairs), headers=headers)
    else:
        reply = client.post(path, content=encode([("csrf_token", "a" * 30), *pairs]),
                            headers={**headers,
                                     "Content-Type": "application/x-www-form-urlencoded"})
    check(reply, target)


@FUZZ
@given(body=st.binary(max_size=3000),
       content_type=st.sampled_from(["multipart/form-data; boundary=xyz",
                                     "multipart/form-data", "application/x-www-form-urlencoded",
                                     "multipart/form-data; boundary=" + "b" * 200,
                                     "text/plain", "application/x-www-form-urlencoded; "
                                     "charset=latin-1"]),
       path=st.sampled_from(["/tap/sync", "/tap/async", "/login", "/oai", "/coverage"]))
def test_malformed_bodies(client, target, body, content_type, path) -> None:
    check(client.post(path, content=body, headers={"Content-Type": content_type}), target)


# OAI-PMH arguments are case-sensitive: names() also draws their other spellings
OAI = ["verb", "metadataPrefix", "identifier", "from", "until", "set", "resumptionToken"]
OAI_VALUES = ["Identify", "ListMetadataFormats", "ListSets", "ListIdentifiers", "ListRecords",
              "GetRecord", "ivo_vor", "oai_dc", "ivo_managed", "ivo://lick.archive.example/tap",
              "ivo://lick.archive.example", "2024-01-01", "2024-01-01T00:00:00Z",
              "1970-01-01", "9999-12-31T23:59:59Z", "1.abc.def", "1.e30=.AAAA"]
oai_values = st.one_of(values, st.sampled_from(OAI_VALUES))


@FUZZ
@given(verb=st.one_of(st.none(), st.sampled_from(OAI_VALUES[:6])),
       pairs=st.lists(st.tuples(names(OAI), oai_values), max_size=5),
       method=st.sampled_from(["GET", "POST"]), auth=credentials())
def test_oai(client, target, verb, pairs, method, auth) -> None:
    """Every answer of the registry is a valid OAI-PMH document (errors included)."""
    if verb is not None:
        pairs = [("verb", verb), *pairs]
    if method == "GET":
        reply = client.get("/oai?" + encode(pairs), headers=auth)
    else:
        reply = client.post("/oai", content=encode(pairs), headers={
            **auth, "Content-Type": "application/x-www-form-urlencoded"})
    check(reply, target)
    if reply.status_code == 200:
        validate(reply.content)


@FUZZ
@given(pairs=param_lists(["FORMAT", "COLLECTION", "RESPONSEFORMAT"]),
       method=st.sampled_from(["GET", "POST"]), auth=credentials())
def test_coverage(client, target, pairs, method, auth) -> None:
    if method == "GET":
        reply = client.get("/coverage?" + encode(pairs), headers=auth)
    else:
        reply = client.post("/coverage", content=encode(pairs), headers={
            **auth, "Content-Type": "application/x-www-form-urlencoded"})
    check(reply, target)


def raw_request(target: RunningServer, head: bytes, body: bytes = b"") -> bytes:
    """Bytes on a socket, as no well-behaved client would send them; the answer."""
    import socket

    host, port = target.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        # the server may answer (413) and close before the body ends
        with contextlib.suppress(OSError):
            sock.sendall(head + b"Connection: close\r\n\r\n" + body)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


@pytest.mark.parametrize("header", [
    b"Authorization: Bearer lick_\x01abc", b"Authorization: Basic \x00\x00",
    b"Cookie: lick_session=\xff\xfe", b"Authorization: Basic \xc3\xa9t\xc3\xa9",
    b"X-Forwarded-For: \x00", b"Authorization: " + b"B" * 20000])
def test_illegal_header_bytes(target, header) -> None:
    answer = raw_request(target, b"GET /tap/sync?LANG=ADQL&QUERY=SELECT+TOP+1+obs_id+FROM+"
                         b"ivoa.obscore HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n")
    assert 0 < status_of(answer) < 500, answer[:300]


def test_oversized_and_slow_bodies(client, target) -> None:
    big = client.post("/tap/sync", content=b"x" * 30_000_000,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413
    check(big, target)
    lying = raw_request(target, b"POST /tap/sync HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        b"application/x-www-form-urlencoded\r\nContent-Length: -5\r\n",
                        b"LANG=ADQL")
    assert status_of(lying) in (400, 413), lying[:300]
    part = b"LANG=ADQL&x=" + b"y" * 1_000_000
    body = b"%x\r\n%s\r\n" % (len(part), part) * 30 + b"0\r\n\r\n"
    chunked = raw_request(target, b"POST /tap/sync HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          b"application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked"
                          b"\r\n", body)
    assert status_of(chunked) == 413, chunked[:300]


@FUZZ
@given(pairs=param_lists(["ID", "FORMAT", "name[]"]), auth=credentials(),
       path=st.sampled_from(["/healthz", "/readyz", "/metrics"]),
       method=st.sampled_from(["GET", "HEAD", "POST", "DELETE"]))
def test_monitoring_endpoints(client, target, pairs, auth, path, method) -> None:
    """Liveness, readiness and metrics take no parameters: any are ignored, any
    method but theirs is refused, hostile credentials are refused like elsewhere."""
    reply = client.request(method, f"{path}?{encode(pairs)}", headers=auth)
    if method == "HEAD":  # no body to check
        assert reply.status_code < 500 and not reply.content, reply.status_code
        return
    check(reply, target)
    if reply.status_code == 200 and method == "GET" and path == "/metrics":
        assert "lick_archive_http_requests_total" in reply.text
