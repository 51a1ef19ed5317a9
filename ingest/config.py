"""The typed settings of ingest: what the CLI builds from the TOML file and hands over.

Everything the loader, the watcher, the access rules and the readers need is on one
frozen, picklable object, so that process-pool workers receive the same settings as
the parent and no ingest code ever reads the environment or a file of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class IngestConfig:
    """Settings of ingest; every field has the default documented in ``conf/``.

    ``roots`` are the archive trees (``<root>/YYYY-MM/DD/<instrument dir>/<file>``);
    ``authority`` and ``base_url`` build dataset identifiers and access URLs;
    ``release_period`` is the default proprietary period ("N days|months|years");
    ``always_public`` maps an instrument directory (or ``"*"``: every directory)
    to file-name globs that are public at once; ``telescopes`` maps an instrument
    directory to the telescope name used by the scheduling database.

    ``workers`` is the size of the reading process pool, ``batch_size`` the rows
    per write transaction.  The watcher treats a file as complete once its size and
    mtime are unchanged for ``stable_delay`` seconds, polls every ``poll_interval``
    seconds, rescans every directory of the archive every ``rescan_interval``
    seconds and always rescans the last ``active_nights`` nights; after a database
    failure it retries with a backoff capped at ``retry_max_delay`` seconds.
    ``schedule_dsn`` is the scheduling database (None: the archive database
    itself), with its tables in ``schedule_schema``.  ``instruments`` holds the
    instrument tables of ``conf/instruments.toml`` (loaded from there when None).
    """

    roots: tuple[Path, ...]
    authority: str = "lick.ucolick.org"
    base_url: str = "http://localhost:8000"
    release_period: str = "2 years"
    instrument_dirs: tuple[str, ...] = ("shane", "AO", "nickel")
    always_public: Mapping[str, tuple[str, ...]] = field(default_factory=_default_always_public)
    telescopes: Mapping[str, str] = field(default_factory=_default_telescopes)
    workers: int = 2
    batch_size: int = 500
    stable_delay: float = 30.0
    poll_interval: float = 10.0
    rescan_interval: float = 3600.0
    active_nights: int = 2
    retry_max_delay: float = 60.0
    schedule_dsn: str | None = None
    schedule_schema: str = "public"
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

    def __reduce__(self) -> tuple[object, ...]:
        # MappingProxyType does not pickle; rebuild from plain dicts in the worker.
        return (_rebuild, (self._as_kwargs(),))

    def _as_kwargs(self) -> dict[str, object]:
        return {
            "roots": self.roots, "authority": self.authority, "base_url": self.base_url,
            "release_period": self.release_period, "instrument_dirs": self.instrument_dirs,
            "always_public": dict(self.always_public), "telescopes": dict(self.telescopes),
            "workers": self.workers, "batch_size": self.batch_size,
            "stable_delay": self.stable_delay, "poll_interval": self.poll_interval,
            "rescan_interval": self.rescan_interval, "active_nights": self.active_nights,
            "retry_max_delay": self.retry_max_delay, "schedule_dsn": self.schedule_dsn,
            "schedule_schema": self.schedule_schema, "instruments": self.instruments,
        }

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
