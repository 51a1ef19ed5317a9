"""The instrument tables of ``conf/instruments.toml`` as typed, picklable objects.

The readers need to know which directory holds which instrument; the ObsCore mapping
needs facility names, collections, spatial scales and the spectral ranges of filters
and dispersers.  Those are facts about the observatory, kept in configuration rather
than code so that staff can add a filter without a release.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

READER_NAMES = frozenset({"kast", "sharcs", "nickel", "generic"})
PRODUCT_TYPES = frozenset({"image", "spectrum"})


@dataclass(frozen=True)
class Band:
    """A spectral range in metres, with the resolving power for a 1" slit if known."""

    em_min: float
    em_max: float
    res_power: float | None = None


@dataclass(frozen=True)
class InstrumentInfo:
    """What the archive knows about one instrument (see conf/instruments.toml)."""

    name: str
    telescope: str
    facility_name: str
    collection: str
    dataproduct_type: str | None
    pixel_scale: float | None = None
    field_radius: float | None = None
    s_resolution: float | None = None
    band: Band | None = None
    filters: dict[str, Band] = field(default_factory=dict)
    dispersers: dict[str, Band] = field(default_factory=dict)
    dichroics: dict[str, float] = field(default_factory=dict)

    def filter_band(self, name: str | None) -> Band | None:
        if name is None:
            return None
        band = self.filters.get(name)
        if band is None:
            folded = name.casefold()
            for key, value in self.filters.items():
                if key.casefold() == folded:
                    return value
        return band


@dataclass(frozen=True)
class DirectoryInfo:
    """An instrument directory below a night: its telescope and readers."""

    name: str
    telescope: str | None
    readers: tuple[str, ...]
    since: date | None = None


@dataclass(frozen=True)
class InstrumentConfig:
    """All directories and instruments; ``directories`` not listed are not ingested."""

    directories: dict[str, DirectoryInfo]
    instruments: dict[str, InstrumentInfo]

    def directory(self, name: str) -> DirectoryInfo | None:
        return self.directories.get(name)

    def instrument(self, name: str | None) -> InstrumentInfo | None:
        return None if name is None else self.instruments.get(name)


def _band(table: dict[str, object], where: str) -> Band:
    try:
        em_min = float(table["em_min"])  # type: ignore[arg-type]
        em_max = float(table["em_max"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: em_min and em_max (metres) are required") from exc
    if not 0 < em_min < em_max:
        raise ValueError(f"{where}: need 0 < em_min < em_max")
    res = table.get("res_power")
    return Band(em_min, em_max, None if res is None else float(res))  # type: ignore[arg-type]


def _optional_float(table: dict[str, object], key: str) -> float | None:
    value = table.get(key)
    return None if value is None else float(value)  # type: ignore[arg-type]


def parse_instrument_config(data: dict[str, object]) -> InstrumentConfig:
    """Build the configuration from parsed TOML; raises ValueError naming the bad key."""
    directories: dict[str, DirectoryInfo] = {}
    for name, raw in dict(data.get("directories", {})).items():  # type: ignore[call-overload]
        readers = tuple(raw.get("readers", ("generic",)))
        unknown = set(readers) - READER_NAMES
        if unknown:
            raise ValueError(f"directories.{name}.readers: unknown {sorted(unknown)}")
        since = raw.get("since")
        if isinstance(since, str):
            since = date.fromisoformat(since)
        directories[name] = DirectoryInfo(name, raw.get("telescope"), readers, since)
    instruments: dict[str, InstrumentInfo] = {}
    for name, raw in dict(data.get("instruments", {})).items():  # type: ignore[call-overload]
        where = f"instruments.{name}"
        product = raw.get("dataproduct_type")
        if product is not None and product not in PRODUCT_TYPES:
            raise ValueError(f"{where}.dataproduct_type: {product!r}")
        band = _band(raw, where) if "em_min" in raw else None
        instruments[name] = InstrumentInfo(
            name=name,
            telescope=raw["telescope"],
            facility_name=raw["facility_name"],
            collection=raw["collection"],
            dataproduct_type=product,
            pixel_scale=_optional_float(raw, "pixel_scale"),
            field_radius=_optional_float(raw, "field_radius"),
            s_resolution=_optional_float(raw, "s_resolution"),
            band=band,
            filters={k: _band(v, f"{where}.filters.{k}") for k, v in
                     raw.get("filters", {}).items()},
            dispersers={k: _band(v, f"{where}.dispersers.{k}") for k, v in
                        raw.get("dispersers", {}).items()},
            dichroics={k: float(v) for k, v in raw.get("dichroics", {}).items()},
        )
    return InstrumentConfig(directories, instruments)


def load_instrument_config(path: Path) -> InstrumentConfig:
    """Read ``conf/instruments.toml`` (or another file of the same shape)."""
    with path.open("rb") as handle:
        return parse_instrument_config(tomllib.load(handle))


def default_instrument_config_path() -> Path:
    """``conf/instruments.toml`` of the source tree this package runs from."""
    return Path(__file__).resolve().parents[2] / "conf" / "instruments.toml"
