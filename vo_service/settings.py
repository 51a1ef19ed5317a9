"""Typed configuration: ``conf/lick-archive.toml`` plus ``LICK_ARCHIVE_*`` environment overrides.

Every key is documented in ``conf/lick-archive.toml`` (a test checks that each field
here, and each of ingest's, appears there).  An environment variable
``LICK_ARCHIVE_<SECTION>_<KEY>`` overrides ``[section] key``;
``LICK_ARCHIVE_DATABASE_URL`` is the common case.  The ``[ingest]`` section is kept
as written (:class:`IngestSection`): ingest declares its keys and defaults itself.
Nothing is read at import time: :func:`load_settings` is called by the CLI and tests.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "LICK_ARCHIVE_"
CONFIG_ENV = "LICK_ARCHIVE_CONFIG"


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class ServiceSettings:
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("var")
    authority: str = "lick.archive.example"
    title: str = "Lick Observatory Archive"
    short_name: str = "Lick Archive"
    publisher: str = "Lick Observatory, University of California Observatories"
    contact_name: str = "Lick Archive staff"
    contact_email: str = "archive@lick.example"
    trusted_proxies: tuple[str, ...] = ()
    max_body_bytes: int = 25_000_000
    body_timeout_s: float = 60.0
    keepalive_timeout_s: float = 5.0
    max_header_bytes: int = 16_384
    max_connections: int = 1_000
    workers: int = 1
    log_format: str = "json"
    metrics_clients: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""
    query_url: str = ""
    direct_url: str = ""
    owner_role: str = "lick_owner"
    query_role: str = "lick_query"
    query_pool_size: int = 8
    identity_pool_size: int = 4
    uws_pool_size: int = 4
    pages_pool_size: int = 4
    datasets_pool_size: int = 4
    admission_wait_s: float = 30.0
    replica_urls: tuple[str, ...] = ()
    replica_check_s: float = 5.0
    client_check_interval_ms: int = 2_000
    sync_statement_timeout_ms: int = 60_000
    async_statement_timeout_ms: int = 3_600_000
    sync_work_mem: str = "64MB"
    async_work_mem: str = "256MB"
    sync_temp_file_limit: str = "1GB"
    async_temp_file_limit: str = "20GB"


@dataclass(frozen=True)
class TapSettings:
    default_maxrec: int = 10_000
    hard_maxrec: int = 100_000_000
    upload_limit_bytes: int = 20_000_000
    upload_max_rows: int = 200_000
    upload_fetch_timeout_s: float = 30.0
    upload_fetch_private: bool = False
    fetch_batch_rows: int = 5_000


@dataclass(frozen=True)
class UwsSettings:
    runner_threads: int = 2
    max_active_jobs_per_owner: int = 10
    max_active_anonymous_jobs: int = 50
    max_active_jobs_per_address: int = 10
    pending_lifetime_s: int = 3_600
    max_result_bytes_per_owner: int = 10_000_000_000
    max_result_bytes_total: int = 100_000_000_000
    default_execution_duration_s: int = 3_600
    hard_execution_duration_s: int = 14_400
    default_destruction_days: int = 7
    hard_destruction_days: int = 30
    sweep_interval_s: int = 300
    max_wait_s: int = 60


@dataclass(frozen=True)
class IngestSection:
    """The ``[ingest]`` table as written, with its ``LICK_ARCHIVE_INGEST_*`` overrides.

    Ingest declares its own keys, types and defaults (``ingest.config.IngestSettings``)
    and ``vo_service`` may not import ``ingest``; so the values are kept as they are
    and the CLI, which may, builds ingest's configuration from them with
    :func:`section_values`.  Each default is thus declared once, by ingest.
    """

    table: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DownloadSettings:
    threads: int = 8
    compute_threads: int = 2
    read_chunk_bytes: int = 1_048_576
    accel_redirect_prefix: str = ""
    datalink_max_ids: int = 50
    tar_max_files: int = 5_000
    tar_max_bytes: int = 20_000_000_000
    tar_gzip_level: int = 1
    tar_burst: int = 5
    tar_per_hour: int = 60
    rate_limit_clients: int = 10_000
    preview_max_size: int = 1_024
    preview_cache_bytes: int = 1_000_000_000
    cutout_max_pixels: int = 4_194_304
    cutout_max_count: int = 16


@dataclass(frozen=True)
class ScheduleSettings:
    dsn: str = ""
    user_sync_query: str = (
        "SELECT obid, first_name, last_name, email, password_hash FROM observers"
    )


@dataclass(frozen=True)
class AuthSettings:
    session_lifetime_s: int = 28_800
    max_failed_logins: int = 10
    throttle_window_s: int = 900
    login_attempts_retention_days: int = 30
    audit_retention_days: int = 730


@dataclass(frozen=True)
class RegistrySettings:
    """The OAI-PMH publishing registry and the coverage (docs/registry.md)."""

    description: str = (
        "Raw frames of the Lick Observatory (Mt. Hamilton) telescopes: the Kast "
        "double spectrograph and the ShaneAO/ShARCS camera on the Shane 3-m, and the "
        "Nickel 1-m direct imaging camera, published as ObsCore 1.1 through TAP, SIA 2.0 "
        "and DataLink.  Data become public when their proprietary period ends.")
    subjects: tuple[str, ...] = ("optical-astronomy", "infrared-astronomy",
                                 "spectroscopy", "direct-imaging")
    reference_url: str = ""
    page_size: int = 50
    pool_size: int = 2
    refresh_interval_s: float = 30.0
    moc_order: int = 10
    record_moc_order: int = 6


@dataclass(frozen=True)
class Settings:
    service: ServiceSettings = field(default_factory=ServiceSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    tap: TapSettings = field(default_factory=TapSettings)
    uws: UwsSettings = field(default_factory=UwsSettings)
    ingest: IngestSection = field(default_factory=IngestSection)
    downloads: DownloadSettings = field(default_factory=DownloadSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)

    @property
    def embedded(self) -> bool:
        """No database URL configured: run our own PostgreSQL cluster in the data dir."""
        return not self.database.url

    @property
    def data_dir(self) -> Path:
        return self.service.data_dir.resolve()

    def replace(self, **sections: Any) -> Settings:
        """A copy with some keys changed: ``replace(database={"url": "..."})``."""
        changed = {
            name: dataclasses.replace(getattr(self, name), **values)
            for name, values in sections.items()
        }
        return dataclasses.replace(self, **changed)


def env_name(section: str, key: str) -> str:
    """The environment variable that overrides ``[section] key``."""
    return f"{ENV_PREFIX}{section}_{key}".upper()


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """``value`` (from TOML, or the text of an environment variable) as ``annotation``.

    Environment text gives lists comma-separated and tables as TOML inline tables
    (``{"*" = ["*.jpg"]}``).
    """
    hint = annotation
    origin = typing.get_origin(hint)
    try:
        if hint is Path:
            return Path(value)
        if origin is tuple:
            (inner, _ellipsis) = typing.get_args(hint)
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(_coerce(v.strip() if isinstance(v, str) else v, inner, key)
                         for v in items if v != "")
        if origin in (Mapping, dict):
            (_key_type, inner) = typing.get_args(hint)
            if isinstance(value, str):
                value = tomllib.loads(f"value = {value}")["value"]
            if not isinstance(value, Mapping):
                raise TypeError("not a table")
            return {str(k): _coerce(v, inner, f"{key}.{k}") for k, v in value.items()}
        if hint is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if hint in (int, float, str):
            return hint(value)
    except (TypeError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"configuration key {key}: cannot use {value!r} ({exc})") from exc
    return value


def section_values(cls: type[Any], name: str, values: Mapping[str, Any],
                   environ: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for dataclass ``cls`` from section ``[name]`` and the environment.

    A key that is not a field of ``cls`` is refused by name; each value is coerced to
    its field's type; ``LICK_ARCHIVE_<NAME>_<KEY>`` overrides ``[name] key``.  Keys
    not given are left out, so that ``cls`` supplies its own defaults.
    """
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(values) - known
    if unknown:
        raise SettingsError(
            f"unknown configuration key(s) in [{name}]: {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(known))})"
        )
    kwargs: dict[str, Any] = {}
    for key in sorted(known):
        variable = env_name(name, key)
        if variable in environ:
            kwargs[key] = _coerce(environ[variable], hints[key], f"{name}.{key} ({variable})")
        elif key in values:
            kwargs[key] = _coerce(values[key], hints[key], f"{name}.{key}")
    return kwargs


def default_config_path() -> Path | None:
    """``$LICK_ARCHIVE_CONFIG``, else ``conf/lick-archive.toml`` in the working directory."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    candidate = Path("conf/lick-archive.toml")
    return candidate if candidate.exists() else None


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read configuration {path}: {exc}") from exc
    sections = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = set(raw) - set(sections)
    if unknown:
        raise SettingsError(f"unknown configuration section(s): {', '.join(sorted(unknown))}")
    types = typing.get_type_hints(Settings)
    built = {
        name: types[name](**section_values(types[name], name, raw.get(name, {}), environ))
        for name in sections if types[name] is not IngestSection
    }
    prefix = env_name("ingest", "")
    built["ingest"] = IngestSection(
        dict(raw.get("ingest", {})),
        {key: value for key, value in environ.items() if key.startswith(prefix)})
    settings = Settings(**built)
    if path is not None and not settings.service.data_dir.is_absolute():
        # A relative data_dir is relative to the project directory holding conf/.
        base = path.resolve().parent.parent
        settings = settings.replace(service={"data_dir": base / settings.service.data_dir})
    return settings


def documented_keys() -> list[str]:
    """Every ``section.key`` declared here; the test suite checks each is described in
    the TOML file.  The ``[ingest]`` keys are ingest's own (``ingest.config``)."""
    types = typing.get_type_hints(Settings)
    return [
        f"{section.name}.{f.name}"
        for section in dataclasses.fields(Settings) if types[section.name] is not IngestSection
        for f in dataclasses.fields(types[section.name])
    ]
