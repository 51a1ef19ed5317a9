"""The records and the OAI-PMH arguments without HTTP or a database.

The records are built from a configuration, the services' documents (built by the
functions that serve them) and coverages made here; each must validate as an
``ri:Resource``, and its content hash must follow its content and nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from tests.xsd import validate
from vo_service.database.pool import Pool
from vo_service.services.coverage import Coverage, union
from vo_service.services.oai import ListRequest, OaiError, OaiService, _arguments, _selection
from vo_service.services.registry import service_documents
from vo_service.services.registry_records import RecordBuilder, collection_slug
from vo_service.services.registry_store import RegistryStore, Selection, content_hash
from vo_service.settings import Settings

NICKEL = Coverage("Lick/Nickel", "10/4479095 4479266", 10, 55000.0, 56000.0, 4e-7, 9e-7,
                  ("Nickel Direct",), ("Lick Observatory",), ("image",), 12)
KAST = Coverage("Lick/Kast", "9/27688", 10, 54000.0, 54001.0, 3.3e-7, 1.1e-6,
                ("Kast Blue", "Kast Red"), ("Lick Observatory",), ("spectrum",), 5)


def build(settings: Settings, coverages: list[Coverage]) -> dict[str, etree._Element]:
    built = RecordBuilder(settings, service_documents(settings), coverages).records()
    return {r.identifier: r.resource for r in built}


def dated(resource: etree._Element) -> bytes:
    copy = etree.fromstring(etree.tostring(resource))
    copy.set("created", "2026-01-01T00:00:00Z")
    copy.set("updated", "2026-01-02T00:00:00Z")
    return etree.tostring(copy)


def test_every_record_validates() -> None:
    records = build(Settings(), [KAST, NICKEL])
    assert sorted(records) == sorted([
        "ivo://lick.archive.example", "ivo://lick.archive.example/registry",
        "ivo://lick.archive.example/org", "ivo://lick.archive.example/tap",
        "ivo://lick.archive.example/sia", "ivo://lick.archive.example/collections/lick-kast",
        "ivo://lick.archive.example/collections/lick-nickel"])
    for resource in records.values():
        validate(dated(resource))
    empty = build(Settings(), [])  # a new archive: no collection, empty coverage
    assert len(empty) == 5
    for resource in empty.values():
        validate(dated(resource))


def test_content_hash_follows_content() -> None:
    first = build(Settings(), [KAST, NICKEL])
    again = build(Settings(), [KAST, NICKEL])
    assert {i: content_hash(r) for i, r in first.items()} == {
        i: content_hash(r) for i, r in again.items()}
    changed = build(Settings().replace(registry={"description": "Another description."}),
                    [KAST, NICKEL])
    assert content_hash(changed["ivo://lick.archive.example/tap"]) != content_hash(
        first["ivo://lick.archive.example/tap"])
    assert content_hash(changed["ivo://lick.archive.example"]) == content_hash(
        first["ivo://lick.archive.example"])  # the authority does not carry it
    wider = build(Settings(), [KAST, NICKEL, Coverage("Lick/ShARCS", "8/100", 10, 60000.0,
                                                      60001.0, 1e-6, 2.4e-6)])
    assert content_hash(wider["ivo://lick.archive.example/sia"]) == content_hash(
        first["ivo://lick.archive.example/sia"])  # no new image collection
    assert content_hash(wider["ivo://lick.archive.example/tap"]) != content_hash(
        first["ivo://lick.archive.example/tap"])


def test_union_and_energy() -> None:
    both = union([KAST, NICKEL], 10)
    assert (both.t_min, both.t_max, both.em_min, both.em_max) == (54000.0, 56000.0, 3.3e-7,
                                                                  1.1e-6)
    assert both.instruments == ("Kast Blue", "Kast Red", "Nickel Direct")
    low, high = both.energy_span()
    assert low < high and abs(high - 6.0196e-19) / 6.0196e-19 < 1e-3
    assert collection_slug("Lick/ShARCS") == "lick-sharcs"


def test_arguments() -> None:
    assert _arguments([("verb", "Identify")]) == ("Identify", {"verb": "Identify"})
    for pairs, code in (
        ([], "badVerb"), ([("verb", "x")], "badVerb"),
        ([("verb", "Identify"), ("verb", "Identify")], "badVerb"),
        ([("verb", "GetRecord"), ("identifier", "x")], "badArgument"),
        ([("verb", "ListSets"), ("set", "x")], "badArgument"),
        ([("verb", "ListRecords"), ("metadataPrefix", "a\tb")], "badArgument"),
    ):
        with pytest.raises(OaiError) as caught:
            _arguments(pairs)
        assert caught.value.code == code, pairs
    day = _selection({"from": "2024-02-29", "until": "2024-02-29"})
    assert day.start == datetime(2024, 2, 29, tzinfo=UTC)
    assert day.until == datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    with pytest.raises(OaiError):
        _selection({"from": "2023-02-29"})


def test_tokens_round_trip_and_refuse_tampering() -> None:
    store = RegistryStore(Pool("unused", "postgresql:///nowhere", 1))  # never opened
    service = OaiService(store, "http://x", "r", "a@b", 10, lambda: b"k" * 32, "ivo://x/r")
    request = ListRequest("ListRecords", "ivo_vor",
                          Selection(datetime(2024, 1, 1, tzinfo=UTC), None, "ivo_managed"),
                          (datetime(2024, 5, 1, 12, tzinfo=UTC), "ivo://x/tap"), 20)
    token = service._encode(request)
    assert service._decode(token, "ListRecords") == request
    other_key = OaiService(store, "http://x", "r", "a@b", 10, lambda: b"j" * 32, "ivo://x/r")
    for bad, verb in ((token, "ListIdentifiers"), (token + "x", "ListRecords"),
                      ("2" + token[1:], "ListRecords"), ("..", "ListRecords")):
        with pytest.raises(OaiError) as caught:
            service._decode(bad, verb)
        assert caught.value.code == "badResumptionToken"
    with pytest.raises(OaiError):
        other_key._decode(token, "ListRecords")
