"""Tarballs of many files: planned whole before the first byte, then streamed as read.

A request names datasets (a list of identifiers, or an ADQL query whose result has an
``obs_publisher_did`` column, run through the TAP service as the requester).  The
plan resolves every identifier through :class:`~vo_service.services.downloads.Downloads`
(one hidden or unknown identifier fails the whole request with the single-file
answer), stats every file and checks the limits on count and bytes, so that every
refusal is a proper error document sent before any byte of the archive.

The archive is then written member by member as the files are read: a POSIX tar
(pax headers only where a name or size needs them), its exact length known in advance
for ``.tar`` (Content-Length), or gzip-compressed on the fly for ``.tar.gz``.  Each
chunk is produced by one call of :meth:`TarStream.next_chunk` in a ``file_limiter``
thread; nothing holds a database connection while streaming.

Members are named ``<night>-<instrument dir>/<file>`` (e.g.
``2019-05-02-shane/b607.fits``), unique because a night's files of one instrument
directory have distinct names.
"""

from __future__ import annotations

import tarfile
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vo_service.errors import UsageFault
from vo_service.services.datasets import Dataset
from vo_service.services.downloads import Downloads
from vo_service.settings import DownloadSettings

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
TAR_MEDIA_TYPE = "application/x-tar"
GZIP_MEDIA_TYPE = "application/gzip"
_FORMATS = {"tar": False, "application/x-tar": False, "tar.gz": True, "tgz": True,
            "gzip": True, "application/gzip": True, "application/x-gzip": True}


def wants_gzip(value: str | None) -> bool:
    """FORMAT=tar (default) or tar.gz; anything else is a UsageFault naming both."""
    if value is None or value.strip() == "":
        return False
    choice = _FORMATS.get(value.strip().lower())
    if choice is None:
        raise UsageFault(f"FORMAT={value[:40]!r} is not offered; use FORMAT=tar or "
                         "FORMAT=tar.gz")
    return choice


def member_name(dataset: Dataset) -> str:
    return f"{dataset.night.isoformat()}-{dataset.instrument_dir}/{dataset.filename}"


@dataclass(frozen=True)
class Member:
    name: str
    path: Path
    size: int
    header: bytes  # the tar header block(s) of this member


@dataclass(frozen=True)
class TarPlan:
    members: tuple[Member, ...]
    gzip: bool

    @property
    def file_bytes(self) -> int:
        return sum(m.size for m in self.members)

    @property
    def tar_size(self) -> int:
        """Length of the uncompressed archive, end blocks and record padding included."""
        body = sum(len(m.header) + _padded(m.size) for m in self.members) + 2 * BLOCK
        return _padded(body, RECORD)

    @property
    def filename(self) -> str:
        return "lick-archive.tar.gz" if self.gzip else "lick-archive.tar"

    @property
    def media_type(self) -> str:
        return GZIP_MEDIA_TYPE if self.gzip else TAR_MEDIA_TYPE


def _padded(size: int, unit: int = BLOCK) -> int:
    return -(-size // unit) * unit


def check_count(count: int, settings: DownloadSettings) -> None:
    if count == 0:
        raise UsageFault("the tarball would be empty: give ID values, or a QUERY whose "
                         "result has an obs_publisher_did column and at least one row")
    if count > settings.tar_max_files:
        raise UsageFault(f"a tarball holds at most {settings.tar_max_files} files and this "
                         f"request names {count}; split it into several requests")


def plan(downloads: Downloads, datasets: Sequence[Dataset], gzip: bool,
         settings: DownloadSettings) -> TarPlan:
    """Stat every file and check the size limit (file_limiter thread)."""
    check_count(len(datasets), settings)
    members = []
    total = 0
    for dataset in datasets:
        sent = downloads.prepare(dataset)
        total += sent.size
        if total > settings.tar_max_bytes:
            raise UsageFault(f"a tarball holds at most {settings.tar_max_bytes} bytes of "
                             "files and these files hold more; split the request")
        info = tarfile.TarInfo(member_name(dataset))
        info.size = sent.size
        info.mtime = int(sent.last_modified.timestamp())
        info.mode = 0o444
        info.uname = info.gname = "lick"
        members.append(Member(info.name, sent.path, sent.size,
                              info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")))
    return TarPlan(tuple(members), gzip)


class TarStream:
    """Produces the archive of a plan chunk by chunk; each call is blocking file I/O.

    A file that shrank since the plan was made cannot be sent as announced: the
    stream then fails (the response is broken off, never silently padded); one that
    grew is sent at its planned size.
    """

    def __init__(self, plan: TarPlan, chunk_bytes: int, gzip_level: int = 1) -> None:
        self.plan = plan
        self.chunk_bytes = max(BLOCK, chunk_bytes)
        self._members = iter(plan.members)
        self._file: BinaryIO | None = None
        self._left = 0
        self._pad = 0
        self._written = 0
        self._ended = False
        self._compressor = (zlib.compressobj(gzip_level, zlib.DEFLATED, 31)
                            if plan.gzip else None)

    def next_chunk(self) -> bytes | None:
        """The next piece of the archive; None at the end."""
        while True:
            raw = self._raw()
            if raw is None:
                return None
            if self._compressor is None:
                return raw
            packed = self._compressor.compress(raw)
            if self._ended:
                packed += self._compressor.flush()
                self._compressor = None
                return packed
            if packed:
                return packed

    def _raw(self) -> bytes | None:
        parts: list[bytes] = []
        room = self.chunk_bytes
        while room > 0:
            if self._file is not None:
                data = self._file.read(min(room, self._left))
                if not data and self._left:
                    self.close()
                    raise OSError("a file shrank while the tarball was being sent")
                self._left -= len(data)
                room -= len(data)
                parts.append(data)
                if self._left == 0:
                    self._file.close()
                    self._file = None
                    parts.append(b"\0" * self._pad)
                    room -= self._pad
                continue
            member = next(self._members, None)
            if member is None:
                if not self._ended:
                    end = self.plan.tar_size - self._written - sum(map(len, parts))
                    parts.append(b"\0" * end)
                    self._ended = True
                break
            parts.append(member.header)
            room -= len(member.header)
            self._file = member.path.open("rb")
            self._left = member.size
            self._pad = _padded(member.size) - member.size
            if member.size == 0:
                self._file.close()
                self._file = None
        if not parts:
            return None
        chunk = b"".join(parts)
        self._written += len(chunk)
        return chunk if chunk or not self._ended else None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class RateLimiter:
    """Token buckets per user: ``burst`` requests in a row, refilled at ``per_hour``.

    Memory is bounded: the least recently seen users beyond ``max_clients`` are
    forgotten (they start again with a full bucket, which only errs in their favour).
    """

    def __init__(self, burst: int, per_hour: int, max_clients: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = max(1, burst)
        self.rate = max(per_hour, 1) / 3600.0
        self.max_clients = max(1, max_clients)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """Take one token: None when allowed, else the seconds until one is free."""
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / self.rate

    def refund(self, key: str) -> None:
        """Give back a token taken for a request that failed before it sent anything:
        the limit counts tarballs served, not mistakes corrected."""
        with self._lock:
            if key in self._buckets:
                tokens, then = self._buckets[key]
                self._buckets[key] = (min(float(self.burst), tokens + 1.0), then)

    def __len__(self) -> int:
        return len(self._buckets)
