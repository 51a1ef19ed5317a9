"""``[ingest]`` goes straight into ingest's own config: ingest declares keys and defaults,
the CLI builds the config from the table and the environment, errors name the key."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from ingest.config import IngestConfig, IngestSettings
from vo_service.cli import main
from vo_service.commands.ingest_commands import ingest_config
from vo_service.settings import SettingsError, load_settings

CONF = Path(__file__).resolve().parents[2] / "conf" / "lick-archive.toml"
# An external database: building the config then connects to nothing.
EXTERNAL = {"LICK_ARCHIVE_DATABASE_URL": "postgresql://u@db.example/lick"}


def _config(environ: dict[str, str] | None = None, path: Path = CONF) -> IngestConfig:
    return ingest_config(load_settings(path, environ={**EXTERNAL, **(environ or {})}))


def test_the_documented_file_gives_ingest_its_own_defaults() -> None:
    config = _config()
    for f in dataclasses.fields(IngestSettings):
        assert getattr(config, f.name) == getattr(IngestSettings(), f.name), f.name
    settings = load_settings(CONF, environ={})
    assert config.authority == settings.service.authority
    assert config.base_url == settings.service.base_url
    assert config.schedule_dsn is None  # [schedule] dsn empty, external database


def test_a_key_left_out_takes_ingest_s_default(tmp_path: Path) -> None:
    short = tmp_path / "short.toml"
    short.write_text('[ingest]\nworkers = 3\n')
    config = _config(path=short)
    assert config.workers == 3
    assert config.stable_seconds == IngestSettings().stable_seconds
    assert config.always_public == IngestSettings().always_public


def test_environment_overrides_are_typed_by_ingest_s_fields() -> None:
    config = _config({
        "LICK_ARCHIVE_INGEST_ROOTS": "/a,/b",
        "LICK_ARCHIVE_INGEST_WORKERS": "4",
        "LICK_ARCHIVE_INGEST_STABLE_SECONDS": "2.5",
        "LICK_ARCHIVE_INGEST_INSTRUMENT_DIRS": "shane, nickel",
        "LICK_ARCHIVE_INGEST_ALWAYS_PUBLIC": '{ "*" = ["*.png"], nickel = ["*.gif"] }',
    })
    assert config.roots == (Path("/a"), Path("/b"))
    assert config.workers == 4
    assert config.stable_seconds == 2.5
    assert config.instrument_dirs == ("shane", "nickel")
    assert dict(config.always_public) == {"*": ("*.png",), "nickel": ("*.gif",)}
    # What the pool workers receive is the same config.
    assert pickle.loads(pickle.dumps(config)) == config


def test_the_staff_form_sees_the_configured_instrument_dirs() -> None:
    """The CLI hands ingest's instrument directories to the pages (serve)."""
    assert _config({"LICK_ARCHIVE_INGEST_INSTRUMENT_DIRS": "shane,AO"}).instrument_dirs == \
        ("shane", "AO")
    assert _config({}).instrument_dirs == IngestSettings().instrument_dirs


def test_errors_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SettingsError, match=r"ingest\.workers \(LICK_ARCHIVE_INGEST_WORKERS\)"):
        _config({"LICK_ARCHIVE_INGEST_WORKERS": "many"})
    with pytest.raises(SettingsError, match=r"ingest\.always_public"):
        _config({"LICK_ARCHIVE_INGEST_ALWAYS_PUBLIC": "*.png"})
    with pytest.raises(SettingsError, match=r"\[ingest\]: release period"):
        _config({"LICK_ARCHIVE_INGEST_RELEASE_PERIOD": "2 fortnights"})
    old = tmp_path / "old.toml"
    old.write_text('[ingest]\nstable_delay = 3\nauthority = "x"\n')
    with pytest.raises(SettingsError, match="stable_delay") as caught:
        _config(path=old)
    assert "authority" in str(caught.value)  # [service] authority, not an [ingest] key
    # The operator sees the message, not a traceback.
    assert main(["--config", str(old), "ingest", "report"]) == 2
    assert "unknown configuration key(s) in [ingest]: authority, stable_delay" in \
        capsys.readouterr().err
