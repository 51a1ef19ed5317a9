"""The configuration key reference is generated from the declarations: every key the
code reads, its default, its variable and its text; a key without text stops it."""

from __future__ import annotations

import dataclasses

import pytest

from ingest.config import IngestSettings
from tests.conftest import run_cli
from vo_service.commands.config_reference import DOCUMENTED, markdown, reference
from vo_service.settings import documented_keys, env_name


def test_every_declared_key_is_in_the_reference() -> None:
    keys = {f"{k.section}.{k.name}": k for k in reference(DOCUMENTED.read_text())}
    declared = set(documented_keys()) | {f"ingest.{f.name}"
                                         for f in dataclasses.fields(IngestSettings)}
    assert set(keys) == declared
    assert keys["service.port"].default == "8000" and keys["service.port"].type == "int"
    assert keys["ingest.prune_max_share"].default == "0.5"
    assert keys["service.metrics_clients"].type == "list of str"
    assert keys["database.url"].env == env_name("database", "url")
    assert all(key.text for key in keys.values())
    text = markdown(DOCUMENTED.read_text())
    assert "## [ingest]" in text and "`LICK_ARCHIVE_INGEST_METRICS_PORT`" in text
    assert "<data_dir>" not in text  # escaped for HTML


def test_a_key_without_its_text_stops_the_build() -> None:
    """(A key right below another shares its text, like host and port; the first key
    of a section has nothing to share.)"""
    lines = DOCUMENTED.read_text().splitlines()
    first = lines.index("[service]") + 1
    while lines[first].startswith("#"):
        del lines[first]
    with pytest.raises(ValueError, match=r"service\.base_url"):
        reference("\n".join(lines))


def test_the_command_prints_it(database) -> None:
    out = run_cli(database, "config", "reference")
    assert out == markdown(DOCUMENTED.read_text())
