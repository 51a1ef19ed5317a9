"""Results stream; a client that goes away cancels its query inside PostgreSQL; a
result that fails after its first rows never looks complete."""

from __future__ import annotations

import io
import time

import httpx
import psycopg2
import pytest
from astropy.io.votable import parse

from tests.xsd import validate

# Three-way self join of the demo table: tens of millions of rows, far more than a
# test would ever read, so the query is still running when the client leaves.
HUGE = ("SELECT a.obs_id, b.obs_id AS b_id, c.obs_id AS c_id FROM ivoa.obscore AS a, "
        "ivoa.obscore AS b, ivoa.obscore AS c")


def _running_user_queries(database) -> int:
    dsn = database.target.admin_dsn or database.owner_dsn
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        # A streaming result is a cursor inside an open transaction of the query role.
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s "
                    "AND xact_start IS NOT NULL", (database.target.query_role,))
        (count,) = cur.fetchone()
    conn.close()
    return int(count)


def test_big_result_streams_and_disconnect_cancels(server, archive):
    received = 0
    seen_running = False
    with httpx.stream("GET", f"{server.tap_url}/sync", timeout=60, params={
            "LANG": "ADQL", "QUERY": HUGE, "MAXREC": "100000000",
            "RESPONSEFORMAT": "csv"}) as reply:
        assert reply.status_code == 200
        for chunk in reply.iter_bytes():
            received += len(chunk)
            if not seen_running and received > 500_000:
                seen_running = _running_user_queries(server.database) >= 1
            if received > 2_000_000:
                break
    assert received > 2_000_000, "the first rows arrive before the query ends"
    assert seen_running, "the query was running in PostgreSQL while rows streamed"
    deadline = time.monotonic() + 20
    while _running_user_queries(server.database) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _running_user_queries(server.database) == 0
    # The service is still healthy afterwards.
    ok = httpx.get(f"{server.tap_url}/sync", params={
        "LANG": "ADQL", "QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore"})
    assert ok.status_code == 200


def _upload_failing_at(row: int, rows: int) -> bytes:
    """An upload whose column x is 0 in one row only: 1/x fails there, after the rows
    before it were sent: far beyond the first batch the executor fetches and the first
    bytes the sync route may prepare before it answers (more than 256 KiB of CSV)."""
    body = "".join(f"<TR><TD>{i % 360}</TD><TD>{i % 90}</TD><TD>{0 if i == row else 1}</TD>"
                   "</TR>" for i in range(rows))
    return ('<VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3" version="1.4"><RESOURCE>'
            '<TABLE><FIELD name="ra" datatype="double"/><FIELD name="dec" datatype="double"/>'
            f'<FIELD name="x" datatype="int"/><DATA><TABLEDATA>{body}</TABLEDATA></DATA>'
            "</TABLE></RESOURCE></VOTABLE>").encode()


FAILING_ROW = 60000
FAILING_UPLOAD = _upload_failing_at(FAILING_ROW, 70000)
# With a POINT the general writers run; without, CSV and BINARY2 go through COPY.
FAILING_QUERIES = {
    "general": "SELECT POINT('ICRS', ra, dec) AS p, 1 / x AS q FROM TAP_UPLOAD.t",
    "copy": "SELECT ra, 1 / x AS q FROM TAP_UPLOAD.t",
}


def _failing_request(server, fmt: str, path: str) -> tuple[int, bytes, Exception | None]:
    status, body, error, _ = _failing_request_with_id(server, fmt, path)
    return status, body, error


def _failing_request_with_id(server, fmt: str, path: str
                             ) -> tuple[int, bytes, Exception | None, str]:
    received: list[bytes] = []
    request_id = ""
    try:
        with httpx.stream("POST", f"{server.tap_url}/sync", timeout=60, data={
                "LANG": "ADQL", "QUERY": FAILING_QUERIES[path], "RESPONSEFORMAT": fmt,
                "MAXREC": "1000000", "UPLOAD": "t,param:t"},
                files={"t": ("t.xml", FAILING_UPLOAD, "application/x-votable+xml")}) as reply:
            status = reply.status_code
            request_id = reply.headers.get("x-request-id", "")
            for chunk in reply.iter_bytes():
                received.append(chunk)
    except httpx.HTTPError as exc:
        return status, b"".join(received), exc, request_id
    return status, b"".join(received), None, request_id


@pytest.mark.parametrize("fmt,path", [("csv", "general"), ("csv", "copy"), ("tsv", "general")])
def test_failure_mid_stream_aborts_formats_without_a_status(server, fmt, path):
    """CSV and TSV cannot say they were cut short: the transfer is broken off (no last
    chunk), which every HTTP client reports, instead of ending cleanly."""
    status, body, error, request_id = _failing_request_with_id(server, fmt, path)
    assert status == 200  # sent with the first rows, before the failure
    assert isinstance(error, httpx.RemoteProtocolError), f"{fmt} ended cleanly"
    assert 0 < body.count(b"\n") <= FAILING_ROW + 1
    # the server says so in its log, on a JSON line naming the request
    import json
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(t) for t in server.log().splitlines() if t.startswith("{")]
        logged = [line for line in lines
                  if line["message"].startswith("result stream failed")
                  and line["request_id"] == request_id]
        if logged:
            break
        time.sleep(0.1)
    assert logged, "the broken-off result was not logged with its request id"


def test_failure_while_fits_spools_never_looks_complete(server):
    """FITS writes nothing before its last row is in: the failure comes before the
    first byte of the file, so the answer is an error document, or (if the status was
    already sent) a broken-off transfer; never a complete-looking file."""
    status, body, error = _failing_request(server, "fits", "general")
    if error is None:
        assert status >= 400 and b'value="ERROR"' in body and b"division by zero" in body
    else:
        assert status == 200 and isinstance(error, httpx.RemoteProtocolError)


@pytest.mark.parametrize("fmt,path", [("votable/td", "general"), ("votable/b", "general"),
                                      ("votable", "general"), ("votable", "copy")])
def test_failure_mid_stream_ends_a_votable_with_error(server, fmt, path):
    status, body, error = _failing_request(server, fmt, path)
    assert status == 200 and error is None
    root = validate(body)
    infos = root.findall(".//{http://www.ivoa.net/xml/VOTable/v1.3}INFO")
    assert (infos[-1].get("name"), infos[-1].get("value")) == ("QUERY_STATUS", "ERROR")
    assert "division by zero" in (infos[-1].text or "")
    assert 0 < len(parse(io.BytesIO(body)).get_first_table().array) <= FAILING_ROW


def test_pyvo_raises_on_a_result_that_failed_mid_stream(server):
    import pyvo

    service = pyvo.dal.TAPService(server.tap_url)
    with pytest.raises(pyvo.dal.DALQueryError, match="division by zero"):
        service.search(FAILING_QUERIES["general"], maxrec=1000000,
                       uploads={"t": io.BytesIO(FAILING_UPLOAD)})
