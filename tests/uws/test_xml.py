"""UWS documents validate against UWS.xsd (xlink resolved locally, no network)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from tests.uws.helpers import make_job
from vo_service.params import Params
from vo_service.uws import documents as xml
from vo_service.uws.model import ErrorSummary, ErrorType, Job, JobRef, JobResult, Phase

XSD = Path(__file__).resolve().parent.parent / "data" / "xsd"
NS = {"uws": xml.UWS_NS, "xlink": xml.XLINK_NS, "v": xml.VOTABLE_NS}


class LocalSchemas(etree.Resolver):  # type: ignore[misc]
    """Maps the schema URLs the XSDs import to the project's copies."""

    def resolve(self, system_url, public_id, context):
        name = system_url.rsplit("/", 1)[-1]
        if (XSD / name).is_file():
            return self.resolve_filename(str(XSD / name), context)
        raise AssertionError(f"schema {system_url} is not available offline")


def load_schema(name: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(LocalSchemas())
    return etree.XMLSchema(etree.parse(str(XSD / name), parser))


@pytest.fixture(scope="module")
def uws_schema() -> etree.XMLSchema:
    return load_schema("UWS.xsd")


def validate(schema: etree.XMLSchema, body: bytes) -> etree._Element:
    document = etree.fromstring(body)
    schema.assertValid(document)
    return document


def full_job() -> Job:
    created = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    job = make_job(owner="alice", run_id="run 7",
                   params=[("LANG", "ADQL"), ("QUERY", "SELECT * FROM t WHERE a < 3 & b"),
                           ("UPLOAD", "x,param:x"), ("ODD", "bell\x07char")])
    return replace(
        job,
        phase=Phase.COMPLETED,
        creation_time=created,
        start_time=created,
        end_time=created,
        quote=created,
        results=(JobResult("result", "application/x-votable+xml", "result.vot", 1234),
                 JobResult("extra", "text/plain", href="http://elsewhere/x")),
    )


def test_job_document_is_valid(uws_schema) -> None:
    job = full_job()
    doc = validate(uws_schema, xml.job_document(job, "http://h/tap/async/" + job.job_id))
    assert doc.get("version") == "1.1"
    assert doc.findtext("uws:jobId", namespaces=NS) == job.job_id
    assert doc.findtext("uws:phase", namespaces=NS) == "COMPLETED"
    assert doc.findtext("uws:creationTime", namespaces=NS) == "2026-03-01T12:00:00.123Z"
    assert doc.findtext("uws:runId", namespaces=NS) == "run 7"
    assert doc.findtext("uws:ownerId", namespaces=NS) == "alice"
    values = {p.get("id"): p.text for p in doc.iterfind("uws:parameters/uws:parameter", NS)}
    assert values["query"] == "SELECT * FROM t WHERE a < 3 & b"
    assert values["odd"] == "bell\ufffdchar"
    results = doc.findall("uws:results/uws:result", NS)
    assert [r.get(f"{{{xml.XLINK_NS}}}href") for r in results] == [
        f"http://h/tap/async/{job.job_id}/results/result",
        "http://elsewhere/x",
    ]
    assert results[0].get("size") == "1234"


def test_pending_anonymous_job_with_nils_is_valid(uws_schema) -> None:
    job = make_job(owner=None, params=[])
    doc = validate(uws_schema, xml.job_document(job, "http://h/async/x"))
    owner = doc.find("uws:ownerId", NS)
    assert owner is not None and owner.get(f"{{{xml.XSI_NS}}}nil") == "true"
    assert doc.find("uws:startTime", NS).get(f"{{{xml.XSI_NS}}}nil") == "true"
    assert doc.find("uws:runId", NS) is None


def test_error_job_is_valid(uws_schema) -> None:
    job = replace(make_job(), phase=Phase.ERROR,
                  error=ErrorSummary(ErrorType.FATAL, "syntax error at line 1, column 5"))
    doc = validate(uws_schema, xml.job_document(job, "http://h/async/x"))
    summary = doc.find("uws:errorSummary", NS)
    assert summary.get("type") == "fatal" and summary.get("hasDetail") == "true"
    assert summary.findtext("uws:message", namespaces=NS) == "syntax error at line 1, column 5"


def test_job_list_is_valid(uws_schema) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    refs = [JobRef("a1", Phase.EXECUTING, "r", "alice", when),
            JobRef("b2", Phase.PENDING, None, None, when)]
    doc = validate(uws_schema, xml.job_list_document(refs, "http://h/tap/async"))
    jobrefs = doc.findall("uws:jobref", NS)
    assert [j.get("id") for j in jobrefs] == ["a1", "b2"]
    assert jobrefs[0].get(f"{{{xml.XLINK_NS}}}href") == "http://h/tap/async/a1"
    assert jobrefs[0].findtext("uws:creationTime", namespaces=NS) == "2026-01-02T03:04:05.000Z"
    assert validate(uws_schema, xml.job_list_document([], "http://h/async")).tag == (
        f"{{{xml.UWS_NS}}}jobs"
    )


def test_results_and_parameters_are_valid(uws_schema) -> None:
    job = full_job()
    results = validate(uws_schema, xml.results_document(job, "http://h/async/j"))
    assert len(results) == 2
    parameters = validate(uws_schema, xml.parameters_document(job))
    assert [p.get("id") for p in parameters] == ["lang", "query", "upload", "odd"]
    empty = replace(job, parameters=Params(), results=())
    validate(uws_schema, xml.parameters_document(empty))
    validate(uws_schema, xml.results_document(empty, "http://h/async/j"))


def test_error_document_is_a_valid_votable() -> None:
    schema = load_schema("VOTable.xsd")
    doc = validate(schema, xml.error_document(ErrorSummary(ErrorType.FATAL, "bad <query>")))
    info = doc.find("v:RESOURCE/v:INFO", NS)
    assert info.get("name") == "QUERY_STATUS" and info.get("value") == "ERROR"
    assert info.text == "bad <query>"
