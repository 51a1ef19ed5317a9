"""The /async routes through a real HTTP client (Starlette TestClient), real database."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from lxml import etree
from starlette.testclient import TestClient

from tests.uws.app import uws_app
from tests.uws.test_runner import csv_executor, wait_for_phase
from tests.uws.test_xml import NS, load_schema
from vo_service.uws.errors import ExecutionFailed
from vo_service.uws.events import PhaseEvents
from vo_service.uws.model import Phase
from vo_service.uws.runner import JobRunner
from vo_service.uws.service import ListFilters, UwsService


@pytest.fixture
def client(service: UwsService, events: PhaseEvents) -> Iterator[TestClient]:
    app = uws_app(service, events, max_upload_bytes=1000)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return load_schema("UWS.xsd")


ALICE = {"X-User": "17"}


def create(client: TestClient, headers=None, **data: str) -> str:
    response = client.post("/tap/async", data=data, headers=headers or {})
    assert response.status_code == 303, response.text
    location = str(response.headers["location"])
    assert location.startswith("http://testserver/tap/async/")
    return location.rsplit("/", 1)[-1]


def test_create_redirects_and_job_document_validates(client, schema) -> None:
    job_id = create(client, ALICE, lang="ADQL", Query="SELECT 1", runId="mine")
    response = client.get(f"/tap/async/{job_id}", headers=ALICE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    doc = etree.fromstring(response.content)
    schema.assertValid(doc)
    assert doc.findtext("uws:phase", namespaces=NS) == "PENDING"
    assert doc.findtext("uws:ownerId", namespaces=NS) == "17"
    assert doc.findtext("uws:runId", namespaces=NS) == "mine"
    values = {p.get("id"): p.text for p in doc.iterfind("uws:parameters/uws:parameter", NS)}
    assert values == {"lang": "ADQL", "query": "SELECT 1"}


def test_text_children(client) -> None:
    job_id = create(client, ALICE)
    for child, expected in (("phase", "PENDING"), ("owner", "17"),
                            ("executionduration", "600")):
        response = client.get(f"/tap/async/{job_id}/{child}", headers=ALICE)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == expected
    quote = client.get(f"/tap/async/{job_id}/quote", headers=ALICE)
    assert quote.headers["content-type"].startswith("text/plain")
    assert quote.text.endswith("Z") and "T" in quote.text
    destruction = client.get(f"/tap/async/{job_id}/destruction", headers=ALICE).text
    assert destruction.endswith("Z")
    anonymous = create(client)
    assert client.get(f"/tap/async/{anonymous}/owner").text == ""


def test_posts_to_children_redirect_to_the_job(client) -> None:
    job_id = create(client, ALICE)
    job_url = f"http://testserver/tap/async/{job_id}"
    for child, data in (("executionduration", {"EXECUTIONDURATION": "60"}),
                        ("destruction", {"destruction": "2030-01-01T00:00:00Z"}),
                        ("parameters", {"maxrec": "10", "QUERY": "SELECT 2"}),
                        ("phase", {"phase": "RUN"})):
        response = client.post(f"/tap/async/{job_id}/{child}", data=data, headers=ALICE)
        assert response.status_code == 303, (child, response.text)
        assert response.headers["location"] == job_url
    assert client.get(f"/tap/async/{job_id}/executionduration", headers=ALICE).text == "60"
    assert client.get(f"/tap/async/{job_id}/phase", headers=ALICE).text == "QUEUED"
    parameters = etree.fromstring(client.get(f"/tap/async/{job_id}/parameters",
                                             headers=ALICE).content)
    assert [p.get("id") for p in parameters] == ["maxrec", "query"]
    # parameters are frozen once the job left PENDING
    refused = client.post(f"/tap/async/{job_id}/parameters", data={"X": "1"}, headers=ALICE)
    assert refused.status_code == 400
    assert "PENDING" in refused.text


def test_phase_run_at_creation_and_bad_phase(client) -> None:
    job_id = create(client, ALICE, PHASE="RUN")
    assert client.get(f"/tap/async/{job_id}/phase", headers=ALICE).text == "QUEUED"
    bad = client.post(f"/tap/async/{job_id}/phase", data={"PHASE": "GO"}, headers=ALICE)
    assert bad.status_code == 400
    assert "RUN" in bad.text
    aborted = client.post(f"/tap/async/{job_id}/phase", data={"PHASE": "ABORT"}, headers=ALICE)
    assert aborted.status_code == 303
    assert client.get(f"/tap/async/{job_id}/phase", headers=ALICE).text == "ABORTED"


def test_delete_both_ways(client) -> None:
    list_url = "http://testserver/tap/async"
    first = create(client, ALICE)
    response = client.delete(f"/tap/async/{first}", headers=ALICE)
    assert response.status_code == 303 and response.headers["location"] == list_url
    assert client.get(f"/tap/async/{first}", headers=ALICE).status_code == 404
    second = create(client, ALICE)
    wrong = client.post(f"/tap/async/{second}", data={"QUERY": "x"}, headers=ALICE)
    assert wrong.status_code == 400
    response = client.post(f"/tap/async/{second}", data={"action": "delete"}, headers=ALICE)
    assert response.status_code == 303 and response.headers["location"] == list_url
    assert client.get(f"/tap/async/{second}/phase", headers=ALICE).status_code == 404


def test_other_owners_see_404(client) -> None:
    job_id = create(client, ALICE)
    for headers in ({"X-User": "18"}, {}):
        assert client.get(f"/tap/async/{job_id}", headers=headers).status_code == 404
        assert client.get(f"/tap/async/{job_id}/phase", headers=headers).status_code == 404
        assert client.delete(f"/tap/async/{job_id}", headers=headers).status_code == 404
    assert client.get(f"/tap/async/{job_id}/phase", headers=ALICE).text == "PENDING"


def test_job_list_with_filters(client, schema) -> None:
    ids = [create(client, ALICE) for _ in range(3)]
    client.post(f"/tap/async/{ids[0]}/phase", data={"PHASE": "ABORT"}, headers=ALICE)
    create(client, {"X-User": "99"})
    anonymous = create(client)

    def listed(query: str = "", headers=ALICE) -> list[str]:
        response = client.get("/tap/async" + query, headers=headers)
        assert response.status_code == 200
        doc = etree.fromstring(response.content)
        schema.assertValid(doc)
        return [ref.get("id") for ref in doc.findall("uws:jobref", NS)]

    assert listed() == [ids[2], ids[1], ids[0]]
    assert listed("?phase=ABORTED") == [ids[0]]
    assert listed("?PHASE=PENDING&PHASE=ABORTED&LAST=2") == [ids[2], ids[1]]
    assert listed("?last=1") == [ids[2]]
    assert anonymous not in listed(headers={})
    assert listed(headers={}) == []
    assert client.get("/tap/async?LAST=-1", headers=ALICE).status_code == 400


def test_multipart_upload_is_kept(client, service: UwsService) -> None:
    response = client.post(
        "/tap/async",
        data={"UPLOAD": "t1,param:table1", "LANG": "ADQL"},
        files={"table1": ("t.xml", b"<VOTABLE>rows</VOTABLE>", "application/xml")},
        headers=ALICE,
    )
    assert response.status_code == 303
    job_id = response.headers["location"].rsplit("/", 1)[-1]
    saved = service.job_dir(job_id) / "uploads" / "table1"
    assert saved.read_bytes() == b"<VOTABLE>rows</VOTABLE>"
    job = service.get("17", job_id)
    assert job.parameters.get_all("upload") == ["t1,param:table1"]


def test_wait_over_http(client, service: UwsService) -> None:
    job_id = create(client, ALICE)
    started = time.monotonic()
    response = client.get(f"/tap/async/{job_id}?WAIT=1&PHASE=PENDING", headers=ALICE)
    assert 0.9 < time.monotonic() - started < 3
    assert etree.fromstring(response.content).findtext("uws:phase", namespaces=NS) == "PENDING"
    for bad in ("soon", "nan", "inf", "1e999"):
        assert client.get(f"/tap/async/{job_id}?WAIT={bad}", headers=ALICE).status_code == 400


def test_results_error_and_files_with_a_real_runner(client, service: UwsService,
                                                    events: PhaseEvents, schema) -> None:
    runner = JobRunner(service.store, csv_executor, service.jobs_dir, threads=2,
                       events=events, poll_interval=0.2)
    runner.start()
    try:
        job_id = create(client, ALICE, QUERY="SELECT 9", PHASE="RUN")
        response = client.get(f"/tap/async/{job_id}?WAIT=10&PHASE=QUEUED", headers=ALICE)
        job = wait_for_phase(service.store, job_id, {Phase.COMPLETED, Phase.ERROR})
        assert job.phase is Phase.COMPLETED, response.text
        results = client.get(f"/tap/async/{job_id}/results", headers=ALICE)
        doc = etree.fromstring(results.content)
        schema.assertValid(doc)
        href = doc.find("uws:result", NS).get(f"{{{NS['xlink']}}}href")
        assert href == f"http://testserver/tap/async/{job_id}/results/result"
        file_response = client.get(href, headers=ALICE)
        assert file_response.status_code == 200
        assert file_response.headers["content-type"].startswith("text/csv")
        assert file_response.text == "q\n9 TCELES\n"
        assert file_response.headers["cache-control"] == "private"
        assert client.get(href, headers={"X-User": "18"}).status_code == 404
        assert client.get(f"/tap/async/{job_id}/results/other",
                          headers=ALICE).status_code == 404
        assert client.get(f"/tap/async/{job_id}/error", headers=ALICE).status_code == 404
    finally:
        runner.stop()


def test_error_document_has_status_200(client, service: UwsService,
                                       events: PhaseEvents) -> None:
    def broken(job, workspace):
        raise ExecutionFailed("ADQL syntax error at line 1, column 8: expected FROM")

    runner = JobRunner(service.store, broken, service.jobs_dir, threads=1,
                       events=events, poll_interval=0.2)
    runner.start()
    try:
        job_id = create(client, ALICE, PHASE="RUN")
        job = wait_for_phase(service.store, job_id, {Phase.COMPLETED, Phase.ERROR})
        assert job.phase is Phase.ERROR
        response = client.get(f"/tap/async/{job_id}/error", headers=ALICE)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-votable+xml")
        votable = etree.fromstring(response.content)
        load_schema("VOTable.xsd").assertValid(votable)
        assert "expected FROM" in votable.find("v:RESOURCE/v:INFO", NS).text
    finally:
        runner.stop()


def test_uploads_over_the_limit_are_refused(client, service: UwsService) -> None:
    response = client.post(
        "/tap/async",
        data={"UPLOAD": "t1,param:a"},
        files={"a": ("a.xml", b"x" * 600, "application/xml"),
               "b": ("b.xml", b"y" * 600, "application/xml")},
        headers=ALICE,
    )
    assert response.status_code == 413
    assert "1000 bytes" in response.text
    assert service.list("17", ListFilters()) == []
