"""Configuration: every key documented in conf/, environment overrides, clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from vo_service.settings import SettingsError, documented_keys, load_settings

CONF = Path(__file__).resolve().parents[2] / "conf" / "lick-archive.toml"


def test_every_key_is_in_the_documented_file():
    raw = tomllib.loads(CONF.read_text())
    present = {f"{section}.{key}" for section, keys in raw.items() for key in keys}
    assert set(documented_keys()) == present


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
    assert settings.ingest.roots == (Path("/a"), Path("/b"))


def test_bad_values_name_the_key(tmp_path):
    with pytest.raises(SettingsError, match=r"service\.port"):
        load_settings(CONF, environ={"LICK_ARCHIVE_SERVICE_PORT": "eighty"})
    bad = tmp_path / "bad.toml"
    bad.write_text("[service]\nprot = 1\n")
    with pytest.raises(SettingsError, match="prot"):
        load_settings(bad, environ={})
