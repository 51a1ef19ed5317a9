"""The ADQL page against a running server: tables, sync runs, errors, async jobs.

Expectations come from the database (TAP_SCHEMA rows, release dates) or from the TAP
endpoints the page stands for, never from the page itself.
"""

from __future__ import annotations

import csv
import html
import io
import re
import time
from urllib.parse import quote

import httpx
from astropy.io.votable import parse_single_table

from tests.web.conftest import CSRF_RE, owner_rows, public_dids
from tests.xsd import validate
from vo_service.services.examples import EXAMPLES


def _cells(text: str, table_id: str) -> list[list[str]]:
    body = text.split(f'id="{table_id}"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>")[1], re.S)
    return [[html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", row, re.S)] for row in rows]


def test_tables_and_columns_come_from_tap_schema(client, server, archive):
    reply = client.get("/adql?table=ivoa.obscore")
    assert reply.status_code == 200
    listed = re.findall(r'<a href="/adql\?table=([^&"]+)', reply.text)
    tables = [r[0] for r in owner_rows(server.database, "SELECT table_name FROM tap_schema.tables"
                                                        " ORDER BY schema_name, table_name")]
    assert [html.unescape(t).replace("%2E", ".") for t in listed] == [
        quote(t, safe="").replace("%2E", ".") for t in tables]
    columns = _cells(reply.text, "column-table")
    expected = owner_rows(server.database, "SELECT column_name, unit FROM tap_schema.columns "
                                           "WHERE table_name = 'ivoa.obscore' "
                                           "ORDER BY column_index, column_name")
    assert [(re.sub("<.*?>", "", c[0]), c[2] or None) for c in columns] == [
        (name, unit or None) for name, unit in expected]
    for example in EXAMPLES:
        assert f'/adql?query={quote(example.query, safe="")}' in html.unescape(reply.text)


def test_sync_run_shows_the_rows_tap_returns(client, server, archive):
    query = "SELECT TOP 20 obs_publisher_did, obs_release_date FROM ivoa.obscore ORDER BY 1"
    reply = client.get("/adql", params={"query": query, "run": "1", "maxrec": "50"})
    assert reply.status_code == 200
    shown = [row[0] for row in _cells(reply.text, "result-table")]
    tap = httpx.get(f"{server.base_url}/tap/sync", params={
        "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv"}, timeout=60)
    assert shown == [r["obs_publisher_did"] for r in csv.DictReader(io.StringIO(tap.text))]
    assert set(shown) <= public_dids(server.database)


def test_sync_run_as_the_observer_sees_their_rows(make_client, server, observer):
    did = sorted(observer.owned)[0]
    query = f"SELECT obs_publisher_did FROM ivoa.obscore WHERE obs_publisher_did = '{did}'"
    anonymous = make_client()
    reply = anonymous.get("/adql", params={"query": query, "run": "1"})
    assert _cells(reply.text, "result-table") == []
    owner = make_client()
    owner.login(observer.login, observer.password)
    reply = owner.get("/adql", params={"query": query, "run": "1"})
    assert [row[0] for row in _cells(reply.text, "result-table")] == [did]


def test_overflow_is_said(client, archive):
    reply = client.get("/adql", params={"query": "SELECT obs_id FROM ivoa.obscore",
                                        "run": "1", "maxrec": "3"})
    assert len(_cells(reply.text, "result-table")) == 3 and "more match" in reply.text


def test_translator_errors_mark_line_and_column(client, archive):
    query = "SELECT obs_id\nFROM ivoa.obscore\nWHERE nonsense = 1"
    reply = client.get("/adql", params={"query": query, "run": "1"})
    assert reply.status_code == 400
    assert "line 3, column 7" in reply.text
    marked = re.search(r'<span class="bad-line">WHERE <mark class="error-at" id="error-at">n'
                       r"</mark>onsense = 1</span>", reply.text)
    assert marked, reply.text[-3000:]
    assert 'aria-invalid="true"' in reply.text


def test_database_errors_are_shown_without_position(client, archive):
    reply = client.get("/adql", params={"query": "SELECT 1/0 AS x FROM ivoa.obscore",
                                        "run": "1"})
    assert reply.status_code == 400 and 'id="query-error"' in reply.text
    assert "Traceback" not in reply.text


def _wait_for_phase(client, job_id: str, phases: set[str]) -> str:
    deadline = time.monotonic() + 120
    while True:
        page = client.get("/adql").text
        found = re.search(rf'data-job="{job_id}">.*?<td class="phase">(\w+)</td>', page, re.S)
        assert found, "the job is not in the list"
        if found.group(1) in phases or time.monotonic() > deadline:
            return found.group(1)
        time.sleep(0.5)


def test_async_submit_list_and_delete(client, server, observer):
    anonymous_post = client.post("/adql/jobs", {"query": "SELECT 1 AS x FROM ivoa.obscore"})
    assert anonymous_post.status_code == 303 and "/login" in anonymous_post.headers["location"]
    client.login(observer.login, observer.password)
    token = client.csrf("/adql")
    assert client.post("/adql/jobs", {"query": "SELECT TOP 5 obs_id FROM ivoa.obscore",
                                      "csrf_token": "wrong"}).status_code == 403
    reply = client.post("/adql/jobs", {"query": "SELECT TOP 5 obs_id FROM ivoa.obscore",
                                       "csrf_token": token})
    assert reply.status_code == 303
    page = client.get("/adql").text
    job_id = re.findall(r'data-job="([^"]+)"', page)[0]
    assert _wait_for_phase(client, job_id, {"COMPLETED", "ERROR"}) == "COMPLETED"
    page = client.get("/adql").text
    found = re.search(rf'href="(/tap/async/{job_id}/results/[^"]+)"', page)
    assert found, "no result link"
    link = html.unescape(found.group(1))
    result = client.get(link)
    assert result.status_code == 200
    validate(result.content)
    table = parse_single_table(io.BytesIO(result.content)).to_table()
    assert len(table) == 5
    other = httpx.get(f"{server.base_url}/tap/async/{job_id}", timeout=30)
    assert other.status_code in (401, 403, 404)  # not anyone's job
    deleted = client.post("/adql/jobs/delete", {"job_id": job_id, "csrf_token": token})
    assert deleted.status_code == 303
    assert f'data-job="{job_id}"' not in client.get("/adql").text
    assert client.get(f"/tap/async/{job_id}").status_code == 404
    assert CSRF_RE.search(client.get("/adql").text)
