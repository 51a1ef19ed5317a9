"""Every /tap/examples query runs on the demo archive; the document is DALI RDFa."""

from __future__ import annotations

import io

import httpx
import pytest
from astropy.io.votable import parse_single_table
from astropy.table import Table
from lxml import etree

from vo_service.services.examples import EXAMPLES

XHTML = "{http://www.w3.org/1999/xhtml}"


def test_examples_document_is_dali_rdfa(server):
    reply = httpx.get(f"{server.tap_url}/examples")
    assert reply.status_code == 200
    root = etree.fromstring(reply.content)
    vocab = [e for e in root.iter() if e.get("vocab")]
    assert [e.get("vocab") for e in vocab] == ["http://www.ivoa.net/rdf/examples#"]
    found = {e.get("id"): e for e in root.iter() if e.get("typeof") == "example"}
    assert set(found) == {x.id for x in EXAMPLES} and len(found) >= 10
    for example in EXAMPLES:
        element = found[example.id]
        assert element.get("resource") == f"#{example.id}"
        names = [e.text for e in element.iter() if e.get("property") == "name"]
        queries = [e.text for e in element.iter() if e.get("property") == "query"]
        assert names == [example.name] and queries == [example.query]


@pytest.mark.parametrize("example", EXAMPLES, ids=[x.id for x in EXAMPLES])
def test_every_example_runs(server, archive, example):
    data = {"LANG": "ADQL", "QUERY": example.query}
    files = None
    if example.uploads:
        mine = Table({"ra": [283.396, 83.82], "dec": [33.029, -5.39]})
        buffer = io.BytesIO()
        mine.write(buffer, format="votable")
        data["UPLOAD"] = "mine,param:mine"
        files = {"mine": ("mine.xml", buffer.getvalue(), "application/x-votable+xml")}
    reply = httpx.post(f"{server.tap_url}/sync", data=data, files=files, timeout=60)
    assert reply.status_code == 200, reply.text
    parse_single_table(io.BytesIO(reply.content))
