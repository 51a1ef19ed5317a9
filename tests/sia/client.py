"""Calling /sia/query the way a client does, for the SIA tests."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import httpx
from astropy.io.votable import parse
from lxml import etree

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
Query = Mapping[str, Sequence[str]]


def pairs(query: Query, **extra: str) -> list[tuple[str, str]]:
    return [(name, value) for name, values in query.items() for value in values] + list(
        extra.items())


def get(base_url: str, query: Query, auth: tuple[str, str] | None = None,
        **extra: str) -> httpx.Response:
    return httpx.get(f"{base_url}/sia/query", params=pairs(query, **extra), auth=auth,
                     timeout=60)


def dids(reply: httpx.Response) -> set[str]:
    """The obs_publisher_did values of a VOTable result (asserting success)."""
    assert reply.status_code == 200, reply.text[:500]
    table = parse(io.BytesIO(reply.content)).get_first_table().to_table()
    return {str(d) for d in table["obs_publisher_did"]}


def status(reply: httpx.Response) -> tuple[str | None, str]:
    """The last QUERY_STATUS INFO of a VOTable (value, text)."""
    root = etree.fromstring(reply.content)
    infos = root.findall(f".//{VOT}INFO[@name='QUERY_STATUS']")
    return (infos[-1].get("value"), infos[-1].text or "") if infos else (None, "")


def error_message(reply: httpx.Response) -> str:
    value, text = status(reply)
    assert value == "ERROR", reply.text[:300]
    return text
