"""RESPONSEFORMAT values (DALI 3.5) and the formats table that feeds TAPRegExt."""

from __future__ import annotations

import pytest

from vo_service.serialize.formats import SUPPORTED_FORMATS, resolve_format


@pytest.mark.parametrize("value,name", [
    (None, "votable-binary2"), ("", "votable-binary2"), ("votable", "votable-binary2"),
    ("VOTable", "votable-binary2"), ("votable/td", "votable-td"), ("votable/b", "votable-binary"),
    ("votable/b2", "votable-binary2"), ("application/x-votable+xml", "votable-binary2"),
    ("application/x-votable+xml;serialization=TABLEDATA", "votable-td"),
    ("application/x-votable+xml; serialization=binary", "votable-binary"),
    ('application/x-votable+xml;serialization="BINARY2"', "votable-binary2"),
    ("text/xml", "votable-binary2"), ("csv", "csv"), ("text/csv", "csv"),
    ("text/csv;header=present", "csv"), ("tsv", "tsv"), ("text/tab-separated-values", "tsv"),
    ("fits", "fits"), ("application/fits", "fits"),
])
def test_known_formats(value: str | None, name: str) -> None:
    assert resolve_format(value).name == name


def test_media_type_is_echoed_for_content_type() -> None:
    """DALI: a format asked for by media type is answered with that media type."""
    assert resolve_format("text/xml").mime_type == "text/xml"
    assert resolve_format("votable").mime_type == "application/x-votable+xml"
    assert resolve_format("csv").mime_type == "text/csv;header=present"


@pytest.mark.parametrize("value,message", [
    ("application/json", "unsupported RESPONSEFORMAT"), ("html", "unsupported"),
    ("application/x-votable+xml;serialization=FITS", "TABLEDATA, BINARY or BINARY2"),
    ("text/csv;header=absent", "header line"), ("text/csv;header", "malformed"),
])
def test_unknown_formats_say_what_is_supported(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        resolve_format(value)
    if "unsupported" in message:
        assert "votable" in str(caught.value) and "text/csv" in str(caught.value)


def test_formats_table_for_tapregext() -> None:
    ids = {f.name: f.ivo_id for f in SUPPORTED_FORMATS}
    assert ids["votable-binary2"] == "ivo://ivoa.net/std/TAPRegExt#output-votable-binary2"
    assert ids["votable-td"] == "ivo://ivoa.net/std/TAPRegExt#output-votable-td"
    assert ids["votable-binary"] == "ivo://ivoa.net/std/TAPRegExt#output-votable-binary"
    aliases = [a for f in SUPPORTED_FORMATS for a in f.aliases]
    assert len(aliases) == len(set(aliases))
    for fmt in SUPPORTED_FORMATS:
        for alias in fmt.aliases:
            assert resolve_format(alias).name == fmt.name
        assert resolve_format(fmt.mime_type).name == fmt.name
