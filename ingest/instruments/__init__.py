"""Instrument readers: from a parsed primary header to the archive's metadata.

:func:`extract` picks the readers configured for the file's instrument directory
(conf/instruments.toml), tries them in order and falls back to the generic reader, so
every file with a usable header yields a record; what was guessed or repaired is in
the context's flags.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.instruments import generic, kast, nickel, sharcs
from ingest.instruments.common import UNKNOWN_INSTRUMENT, Extracted, ReadContext
from ingest.instruments.config import (
    Band,
    DirectoryInfo,
    InstrumentConfig,
    InstrumentInfo,
    default_instrument_config_path,
    load_instrument_config,
)

__all__ = [
    "Band",
    "DirectoryInfo",
    "Extracted",
    "InstrumentConfig",
    "InstrumentInfo",
    "ReadContext",
    "default_instrument_config_path",
    "extract",
    "load_instrument_config",
]

_READERS: dict[str, Callable[[ReadContext], Extracted | None]] = {
    "kast": kast.read,
    "sharcs": sharcs.read,
    "nickel": nickel.read,
}


def extract(ctx: ReadContext, directory: DirectoryInfo) -> Extracted:
    """Run the directory's readers on ``ctx``; the generic reader catches the rest."""
    specific = directory.since is None or ctx.night >= directory.since
    if specific:
        for name in directory.readers:
            reader = _READERS.get(name)
            if reader is None:
                continue
            extracted = reader(ctx)
            if extracted is not None:
                return extracted
        if any(name in _READERS for name in directory.readers):
            ctx.flags.add(UNKNOWN_INSTRUMENT)
    return generic.read(ctx, directory.telescope)
