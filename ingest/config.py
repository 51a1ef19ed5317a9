"""The typed settings of ingest: the ``[ingest]`` keys with their defaults, and what the
CLI adds to them before handing the whole over.

Ingest owns its settings: :class:`IngestSettings` declares every key of the
``[ingest]`` section of ``conf/lick-archive.toml`` with its one default (the CLI reads
the table and builds the config from these field types; the service never declares
them).  :class:`IngestConfig` adds what comes from elsewhere: the service's identity
from ``[service]``, the scheduling database, the instrument tables.  Everything the
loader, the watcher, the access rules and the readers need is on that one frozen,
picklable object, so that process-pool workers receive the same settings as the
parent and no ingest code ever reads the environment or a file of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

from ingest.access import parse_period
from ingest.instruments.config import (
    InstrumentConfig,
    default_instrument_config_path,
    load_instrument_config,
)


def _default_always_public() -> Mapping[str, tuple[str, ...]]:
    # Camera products are published at once by the observatory (MISSION §1 rule 2).
    return MappingProxyType({"*": ("*.jpg", "*.jpeg", "*.mp4")})


def _default_telescopes() -> Mapping[str, str]:
    return MappingProxyType({"shane": "Shane", "AO": "Shane", "nickel": "Nickel"})


class IngestError(RuntimeError):
    """Ingest cannot start or go on; the message says what the operator must fix."""


@dataclass(frozen=True, kw_only=True)
class IngestSettings:
    """The ``[ingest]`` section: each field is a key, documented in ``conf/`` with this
    default (a test holds the two in agreement).

    ``roots`` are the archive trees (``<root>/YYYY-MM/DD/<instrument dir>/<file>``);
    ``release_period`` is the default proprietary period ("N days|months|years");
    ``always_public`` maps an instrument directory (or ``"*"``: every directory)
    to file-name globs that are public at once; ``telescopes`` maps an instrument
    directory to the telescope name used by the scheduling database, whose tables
    are in ``schedule_schema``.

    ``workers`` is the size of the reading process pool, ``batch_size`` the rows
    per write transaction.  The watcher treats a file as complete once its size and
    mtime are unchanged for ``stable_seconds``, polls every ``poll_seconds``, rescans
    every directory of the archive every ``rescan_seconds`` and always rescans the
    last ``active_nights`` nights; after a database failure it retries with a
    backoff capped at ``retry_max_seconds``.

    ``ingest prune`` refuses to remove more than ``prune_max_share`` of the recorded
    files of a night's instrument directory without ``--force``.  Every
    ``schedule_check_seconds`` the watcher compares the scheduling database's runs with
    those last applied and re-applies the access rules to the nights of changed runs.
    It serves its Prometheus metrics on ``metrics_host``:``metrics_port`` (0: off).
    """

    roots: tuple[Path, ...] = ()
    instrument_dirs: tuple[str, ...] = ("shane", "AO", "nickel")
    release_period: str = "2 years"
    always_public: Mapping[str, tuple[str, ...]] = field(default_factory=_default_always_public)
    telescopes: Mapping[str, str] = field(default_factory=_default_telescopes)
    schedule_schema: str = "public"
    workers: int = 2
    batch_size: int = 500
    stable_seconds: float = 10.0
    poll_seconds: float = 30.0
    rescan_seconds: float = 3600.0
    active_nights: int = 2
    retry_max_seconds: float = 60.0
    prune_max_share: float = 0.5
    schedule_check_seconds: float = 300.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0


@dataclass(frozen=True, kw_only=True)
class IngestConfig(IngestSettings):
    """The settings plus what the CLI takes from elsewhere.

    ``authority`` and ``base_url`` build dataset identifiers and access URLs: they
    are the service's own (``[service]``), with no default here, so that ingest can
    never write identifiers the service does not answer to.  ``schedule_dsn`` is
    the scheduling database (None: the archive database itself).  ``instruments``
    holds the instrument tables of ``conf/instruments.toml`` (loaded from there
    when None).
    """

    authority: str
    base_url: str
    schedule_dsn: str | None = None
    instruments: InstrumentConfig | None = None

    def __post_init__(self) -> None:
        if self.instruments is None:
            # The readers cannot work without the instrument tables: load the default.
            object.__setattr__(self, "instruments",
                               load_instrument_config(default_instrument_config_path()))
        # Normalise so that the object compares, pickles and prints the same however
        # the caller built it (lists from TOML, str paths).
        object.__setattr__(self, "roots", tuple(Path(r) for r in self.roots))
        object.__setattr__(self, "instrument_dirs", tuple(self.instrument_dirs))
        object.__setattr__(
            self, "always_public",
            MappingProxyType({k: tuple(v) for k, v in self.always_public.items()}),
        )
        object.__setattr__(self, "telescopes", MappingProxyType(dict(self.telescopes)))
        parse_period(self.release_period)  # a typo must stop the run, not reject files
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not 0.0 <= self.prune_max_share <= 1.0:
            raise ValueError("prune_max_share must be between 0 and 1")

    def __reduce__(self) -> tuple[object, ...]:
        # MappingProxyType does not pickle; rebuild from plain dicts in the worker.
        kwargs = {f.name: getattr(self, f.name) for f in fields(self)}
        kwargs.update(always_public=dict(self.always_public), telescopes=dict(self.telescopes))
        return (_rebuild, (kwargs,))

    @property
    def instrument_config(self) -> InstrumentConfig:
        assert self.instruments is not None  # set by __post_init__
        return self.instruments

    def telescope_of(self, instrument_dir: str) -> str | None:
        """The telescope name the scheduling database uses for an instrument dir."""
        if instrument_dir in self.telescopes:
            return self.telescopes[instrument_dir]
        directory = self.instrument_config.directory(instrument_dir)
        return directory.telescope if directory is not None else None


def _rebuild(kwargs: dict[str, object]) -> IngestConfig:
    return IngestConfig(**kwargs)  # type: ignore[arg-type]
