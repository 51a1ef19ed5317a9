"""The archive on disk: which files exist, where, with what size and mtime.

The layout is ``<root>/YYYY-MM/DD/<instrument dir>/<file>``; only configured
instrument directories count, hidden files and override files are not archive files.
Bulk ingest, the watcher and the report all see the archive through these functions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from ingest.access import override_number
from ingest.config import IngestConfig, IngestError

_EPOCH = datetime(1970, 1, 1)
_LAYOUT = re.compile(r"([0-9]{4})-([0-9]{2})/([0-9]{2})/[^/]+/[^/]+")


@dataclass(frozen=True)
class DiskFile:
    """A file of the archive as seen by ``stat`` before it is read."""

    root: Path
    path: str  # relative to root, POSIX separators: YYYY-MM/DD/<instrument dir>/<file>
    size: int
    mtime: datetime  # UTC, naive, truncated to microseconds (as stored)

    @property
    def absolute(self) -> Path:
        return self.root / self.path

    @property
    def directory(self) -> str:
        return self.path.rsplit("/", 1)[0]

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[1]


def mtime_of(st: os.stat_result) -> datetime:
    """The mtime as stored in the database: UTC, naive, whole microseconds."""
    return _EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000)


def night_of(relative: str) -> date | None:
    """The observing night of a layout path ``YYYY-MM/DD/<dir>/<file>``, else None.

    The one test of the layout for the readers, the scans, the access rules and the
    report: ASCII digits only (``int`` alone would take " 12" or "+1"), four parts,
    none empty, and a real date.
    """
    match = _LAYOUT.fullmatch(relative)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def is_archive_file(relative: str, config: IngestConfig) -> bool:
    """Whether ``relative`` is an ingestible file: the layout, a configured instrument
    directory, not hidden, not an override file."""
    parts = relative.split("/")
    return (
        night_of(relative) is not None
        and parts[2] in config.instrument_dirs
        and not parts[3].startswith(".")
        and override_number(parts[3]) is None
    )


def find_root(path: Path, config: IngestConfig) -> Path:
    """The configured root that contains ``path``."""
    resolved = path.resolve()
    for root in config.roots:
        if resolved == root.resolve() or resolved.is_relative_to(root.resolve()):
            return root
    roots = ", ".join(str(r) for r in config.roots) or "(none configured)"
    raise IngestError(f"{path} is not below any archive root ({roots}); "
                      "add its root to [ingest] roots")


def stat_file(root: Path, relative: str) -> DiskFile | None:
    try:
        st = (root / relative).stat()
    except OSError:
        return None
    return DiskFile(root, relative, st.st_size, mtime_of(st))


def scan_directory(root: Path, relative_dir: str, config: IngestConfig) -> list[DiskFile]:
    """The archive files directly inside one instrument directory."""
    found: list[DiskFile] = []
    try:
        entries = list(os.scandir(root / relative_dir))
    except OSError:
        return found
    for entry in entries:
        relative = f"{relative_dir}/{entry.name}"
        if not is_archive_file(relative, config):
            continue
        try:
            if not entry.is_file():
                continue
            st = entry.stat()
        except OSError:
            continue  # vanished between listing and stat
        found.append(DiskFile(root, relative, st.st_size, mtime_of(st)))
    return sorted(found, key=lambda f: f.path)


def instrument_dirs(root: Path, config: IngestConfig, below: str = "") -> Iterator[str]:
    """Relative ``YYYY-MM/DD/<dir>`` directories of a root (or below a part of it)."""
    base = root / below if below else root
    depth = len([p for p in below.split("/") if p])
    if depth == 3:
        if (base).is_dir() and below.split("/")[2] in config.instrument_dirs:
            yield below.strip("/")
        return
    try:
        children = sorted(e.name for e in os.scandir(base) if e.is_dir())
    except OSError:
        return
    for name in children:
        child = f"{below.strip('/')}/{name}" if below.strip("/") else name
        if depth == 0 and not (len(name) == 7 and name[4] == "-"):
            continue
        if depth == 1 and len(name) != 2:
            continue
        if depth == 2 and name not in config.instrument_dirs:
            continue
        yield from instrument_dirs(root, config, child)


def collect(paths: Iterable[Path | str], config: IngestConfig) -> tuple[list[DiskFile], int]:
    """Files named by ``paths`` (files or directories); returns (files, ignored count)."""
    files: dict[tuple[Path, str], DiskFile] = {}
    ignored = 0
    for given in paths:
        path = Path(given)
        root = find_root(path, config)
        relative = path.resolve().relative_to(root.resolve()).as_posix()
        relative = "" if relative == "." else relative
        if path.is_file():
            disk = stat_file(root, relative)
            if disk is not None and is_archive_file(relative, config):
                files[(root, relative)] = disk
            else:
                ignored += 1
            continue
        if not path.is_dir():
            raise IngestError(f"{path} does not exist")
        depth = len(relative.split("/")) if relative else 0
        if depth > 3:
            raise IngestError(f"{path} is below an instrument directory: not the archive layout")
        for directory in instrument_dirs(root, config, relative):
            for disk in scan_directory(root, directory, config):
                files[(root, disk.path)] = disk
    return sorted(files.values(), key=lambda f: f.path), ignored
