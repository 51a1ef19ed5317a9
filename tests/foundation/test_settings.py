"""Configuration: every key documented in conf/, environment overrides, clear errors."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path

import pytest

from ingest.config import IngestSettings
from vo_service.settings import (
    IngestSection,
    Settings,
    SettingsError,
    documented_keys,
    load_settings,
    section_values,
)

CONF = Path(__file__).resolve().parents[2] / "conf" / "lick-archive.toml"


def test_every_key_is_in_the_documented_file():
    raw = tomllib.loads(CONF.read_text())
    present = {f"{section}.{key}" for section, keys in raw.items() for key in keys}
    ingest_keys = {f"ingest.{f.name}" for f in dataclasses.fields(IngestSettings)}
    assert set(documented_keys()) | ingest_keys == present


def test_documented_values_are_the_defaults():
    """What operators read in conf/ is what the code does when a key is left out."""
    raw = tomllib.loads(CONF.read_text())
    for section in dataclasses.fields(Settings):
        cls = typing.get_type_hints(Settings)[section.name]
        if cls is IngestSection:
            cls = IngestSettings  # ingest declares the [ingest] keys
        assert cls(**section_values(cls, section.name, raw[section.name], {})) == cls(), \
            section.name


def test_every_key_has_a_comment():
    lines = CONF.read_text().splitlines()
    for index, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            above = lines[index - 1]
            assert above.startswith("#") or "=" in above, f"undocumented: {line}"


def test_environment_overrides_file():
    settings = load_settings(CONF, environ={
        "LICK_ARCHIVE_DATABASE_URL": "postgresql://u@h/db",
        "LICK_ARCHIVE_SERVICE_PORT": "9000",
        "LICK_ARCHIVE_INGEST_ROOTS": "/a,/b",
    })
    assert settings.database.url == "postgresql://u@h/db"
    assert not settings.embedded
    assert settings.service.port == 9000
    assert settings.ingest.environ == {"LICK_ARCHIVE_INGEST_ROOTS": "/a,/b"}


def test_bad_values_name_the_key(tmp_path):
    with pytest.raises(SettingsError, match=r"service\.port"):
        load_settings(CONF, environ={"LICK_ARCHIVE_SERVICE_PORT": "eighty"})
    bad = tmp_path / "bad.toml"
    bad.write_text("[service]\nprot = 1\n")
    with pytest.raises(SettingsError, match="prot"):
        load_settings(bad, environ={})
