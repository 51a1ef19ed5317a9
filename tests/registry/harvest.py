"""A registry harvester for the tests: OAI-PMH requests, every answer validated.

It does what the IVOA Registry of Registries and the searchable registries do: six
verbs, lists followed through their resumption tokens, each answer checked against
the OAI-PMH schema (which checks the records inside it strictly against
RegistryInterface, VOResource, VODataService, TAPRegExt, VORegistry, or oai_dc).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from lxml import etree

from tests.xsd import validate

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
RI_NS = "http://www.ivoa.net/xml/RegistryInterface/v1.0"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
NS = {"oai": OAI_NS, "ri": RI_NS, "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/",
      "dc": "http://purl.org/dc/elements/1.1/"}


def oai(client: httpx.Client, method: str = "GET", **arguments: str) -> etree._Element:
    """One request; the validated answer (always HTTP 200, errors included)."""
    if method == "GET":
        reply = client.get("/oai", params=arguments)
    else:
        reply = client.post("/oai", data=arguments)
    assert reply.status_code == 200, reply.text[:500]
    assert reply.headers["content-type"].startswith("text/xml")
    return validate(reply.content)


def error_codes(root: etree._Element) -> list[str]:
    return [e.get("code") for e in root.iterfind("oai:error", NS)]


@dataclass
class Harvest:
    pages: list[etree._Element]
    items: list[etree._Element]  # oai:record or oai:header elements, in order
    tokens: list[etree._Element]

    def identifiers(self) -> list[str]:
        return [i.findtext(".//oai:header/oai:identifier", namespaces=NS)
                or i.findtext("oai:identifier", namespaces=NS) for i in self.items]


def harvest(client: httpx.Client, verb: str = "ListRecords", *, method: str = "GET",
            **arguments: str) -> Harvest:
    """A list, followed through every resumptionToken to its end."""
    pages, items, tokens = [], [], []
    root = oai(client, method, verb=verb, **arguments)
    while True:
        pages.append(root)
        assert not error_codes(root), etree.tostring(root)[:800]
        body = root.find(f"oai:{verb}", NS)
        assert body is not None
        tag = "record" if verb == "ListRecords" else "header"
        items.extend(body.iterfind(f"oai:{tag}", NS))
        token = body.find("oai:resumptionToken", NS)
        if token is None or not (token.text or "").strip():
            if token is not None:
                tokens.append(token)
            return Harvest(pages, items, tokens)
        tokens.append(token)
        root = oai(client, method, verb=verb, resumptionToken=token.text)


def header_of(item: etree._Element) -> etree._Element:
    found = item if item.tag == f"{{{OAI_NS}}}header" else item.find("oai:header", NS)
    assert found is not None
    return found


def resource_of(item: etree._Element) -> etree._Element | None:
    return item.find("oai:metadata/ri:Resource", NS)
