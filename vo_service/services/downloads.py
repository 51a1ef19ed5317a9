"""Single files and headers for download: access rule, validators, byte ranges.

Everything here decides *what* to send; the HTTP layer (``routes/downloads.py``)
only sends it.  A dataset is found through :class:`DatasetLookup` as the requester,
so row-level security decides; a dataset the requester may not see and one that does
not exist get the same answer, built from the identifier alone (:func:`not_visible`):
anonymous requesters are told that logging in may give access (401, so that clients
such as pyvo retry with credentials), authenticated ones get 404.

Validators come from the database row (the SHA-256 checksum ingest stored, and the
file's modification time) as long as the file on disk still has the size ingest saw;
otherwise from the file itself, so that a changed file never keeps an old ETag.

Blocking: :meth:`Downloads.dataset` uses the ``datasets`` pool (a worker thread of
it); :meth:`Downloads.prepare` touches the disk (a ``file_limiter`` thread).
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from auth.principals import Principal
from vo_service.errors import AuthorizationFault, NotFoundFault, ServiceError
from vo_service.services.datasets import Dataset, DatasetLookup
from vo_service.services.previews import PNG_MEDIA_TYPE, PreviewCache

FITS_MEDIA_TYPE = "application/fits"
_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".ccd", ".fits.gz", ".fits.fz")
#: More ranges than this in one request are answered as one covering range.
MAX_RANGES = 16


def not_visible_message(principal: Principal) -> str:
    """The text for an identifier that is unknown *or* not visible: the same for both,
    so that the answer never tells whether a hidden dataset exists."""
    if principal.is_authenticated:
        return "no dataset with this identifier is available to you"
    return ("no public dataset has this identifier; logging in may give access to "
            "proprietary data")


def not_visible(principal: Principal) -> ServiceError:
    """The error for an unknown or hidden identifier on the download paths."""
    message = not_visible_message(principal)
    if principal.is_authenticated:
        return NotFoundFault(message)
    return AuthorizationFault(message, status=401)


def media_type_of(filename: str) -> str:
    lowered = filename.lower()
    if lowered.endswith(_FITS_SUFFIXES):
        return FITS_MEDIA_TYPE
    return mimetypes.guess_type(lowered)[0] or "application/octet-stream"


def is_fits(filename: str) -> bool:
    return filename.lower().endswith(_FITS_SUFFIXES)


def content_disposition(kind: str, filename: str) -> str:
    """RFC 6266, with the RFC 8187 form for names beyond printable ASCII."""
    quoted = quote(filename, safe="")
    if quoted == filename:
        return f'{kind}; filename="{filename}"'
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_"
                         for c in filename)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quoted}"


@dataclass(frozen=True)
class FileToSend:
    """A file on disk with everything its response headers need."""

    path: Path
    size: int
    etag: str
    last_modified: datetime
    media_type: str
    filename: str
    public: bool

    @property
    def last_modified_http(self) -> str:
        return format_datetime(self.last_modified, usegmt=True)


def cache_control(public: bool) -> str:
    """Public data may be kept by shared caches for an hour; anything else never (an
    authenticated answer is private whatever this says: routes/authn.py)."""
    return "public, max-age=3600" if public else "private"


class Downloads:
    """Datasets for the download paths, as the requester may see them."""

    def __init__(self, lookup: DatasetLookup) -> None:
        self.lookup = lookup

    def dataset(self, principal: Principal, did: str) -> Dataset:
        """The dataset, or the not-visible error (datasets pool thread)."""
        found = self.lookup.visible(principal, [did]).get(did)
        if found is None:
            raise not_visible(principal)
        return found

    def datasets(self, principal: Principal, dids: Sequence[str]) -> list[Dataset]:
        """Every dataset named, in order, or the not-visible error for the first one
        missing: a request naming one hidden file fails as a whole."""
        wanted = list(dict.fromkeys(dids))
        found: dict[str, Dataset] = {}
        step = 1000
        for start in range(0, len(wanted), step):
            found.update(self.lookup.visible(principal, wanted[start:start + step]))
        if any(did not in found for did in wanted):
            raise not_visible(principal)
        return [found[did] for did in wanted]

    def prepare(self, dataset: Dataset) -> FileToSend:
        """The file of a visible dataset with its validators (file_limiter thread)."""
        path = self.lookup.file_of(dataset)
        if path is None:
            raise NotFoundFault("the file of this dataset is missing from the archive "
                                "disk; the archive staff have to restore it")
        return file_to_send(path, os.stat(path), dataset)


def file_to_send(path: Path, stat: os.stat_result, dataset: Dataset) -> FileToSend:
    unchanged = dataset.file_size == stat.st_size
    if unchanged and dataset.checksum:
        etag = f'"{dataset.checksum}"'
    else:
        etag = f'"f{stat.st_size:x}-{stat.st_mtime_ns:x}"'
    if unchanged and dataset.file_mtime is not None:
        mtime = dataset.file_mtime
        modified = mtime.replace(tzinfo=UTC) if mtime.tzinfo is None else mtime
    else:
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
    return FileToSend(path=path, size=stat.st_size, etag=etag,
                      last_modified=modified.replace(microsecond=0),
                      media_type=media_type_of(dataset.filename),
                      filename=dataset.filename, public=dataset.public)


def cached_preview(cache: PreviewCache, key: str, etag: str, filename: str, public: bool
                   ) -> FileToSend | None:
    """A cached preview as a file to send, or None (file_limiter thread).  One removed
    by a trim between the lookup and the stat is simply not cached any more."""
    path = cache.get(key)
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return FileToSend(path=path, size=stat.st_size, etag=etag,
                      last_modified=datetime.fromtimestamp(int(stat.st_mtime), UTC),
                      media_type=PNG_MEDIA_TYPE, filename=filename, public=public)


# -- conditional requests (RFC 9110 sect. 13) ------------------------------------------


def _etags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def not_modified(if_none_match: str | None, if_modified_since: str | None, etag: str,
                 last_modified: datetime | None) -> bool:
    """Whether a GET may be answered 304: If-None-Match (weak comparison) decides when
    present, else If-Modified-Since."""
    if if_none_match is not None:
        tags = _etags(if_none_match)
        return "*" in tags or etag.removeprefix("W/") in tags
    if if_modified_since is not None:
        since = _http_date(if_modified_since)
        return since is not None and last_modified is not None and last_modified <= since
    return False


def range_applies(if_range: str | None, etag: str, last_modified: datetime) -> bool:
    """If-Range: the ranges apply only to the representation the client has (strong
    comparison); otherwise the whole file is sent."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith('"'):
        return value == etag and not etag.startswith("W/")
    since = _http_date(value)
    return since is not None and since == last_modified


def _http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# -- byte ranges (RFC 9110 sect. 14) ---------------------------------------------------


class RangeNotSatisfiable(Exception):
    """416: no range of the request lies in the file (or the header is garbled)."""


def parse_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges of a Range header as sorted, merged ``(start, end)`` pairs
    (end exclusive); None when the whole file is to be sent (no header, or a unit
    other than bytes, which RFC 9110 lets a server ignore).

    ``bytes=0-99``, ``bytes=100-`` and suffix ranges ``bytes=-500`` are understood;
    ranges starting beyond the end are dropped; none left, or a malformed range
    (``bytes=5-1``, ``bytes=x``), is :class:`RangeNotSatisfiable`.
    """
    if header is None:
        return None
    unit, sep, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if not sep or len(spec) > 4096:
        raise RangeNotSatisfiable()
    wanted: list[tuple[int, int]] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        first, dash, last = part.partition("-")
        first, last = first.strip(), last.strip()
        if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == "") \
                or not first.isascii() or not last.isascii() or (first == last == ""):
            raise RangeNotSatisfiable()
        if first == "":  # suffix: the last N bytes
            length = int(last)
            if length > 0 and size > 0:
                wanted.append((max(0, size - length), size))
            continue
        start = int(first)
        end = size if last == "" else int(last) + 1
        if last != "" and end <= start:
            raise RangeNotSatisfiable()
        if start < size:
            wanted.append((start, min(end, size)))
    if not wanted:
        raise RangeNotSatisfiable()
    wanted.sort()
    merged = [wanted[0]]
    for start, end in wanted[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    if len(merged) > MAX_RANGES:
        return [(merged[0][0], merged[-1][1])]
    return merged


class FileReader:
    """The bytes of a file response, one chunk per call (blocking: file_limiter thread).

    ``ranges`` None sends the whole file; one range sends that range; several send a
    ``multipart/byteranges`` body (RFC 9110 sect. 14.6) with ``boundary``.  The
    length is known before the first byte (:attr:`content_length`).  A file that
    shrank meanwhile fails the stream rather than sending fewer bytes than announced.
    """

    def __init__(self, sent: FileToSend, ranges: list[tuple[int, int]] | None,
                 chunk_bytes: int, boundary: str = "") -> None:
        self.sent = sent
        self.chunk_bytes = max(4096, chunk_bytes)
        self.boundary = boundary
        self._parts: list[tuple[bytes, int, int]] = []  # (preamble, start, end)
        if ranges is None:
            self._parts.append((b"", 0, sent.size))
            self._trailer = b""
        elif len(ranges) == 1:
            self._parts.append((b"", *ranges[0]))
            self._trailer = b""
        else:
            for start, end in ranges:
                preamble = (f"\r\n--{boundary}\r\nContent-Type: {sent.media_type}\r\n"
                            f"Content-Range: bytes {start}-{end - 1}/{sent.size}\r\n\r\n")
                self._parts.append((preamble.encode("ascii"), start, end))
            self._trailer = f"\r\n--{boundary}--\r\n".encode("ascii")
        self.content_length = sum(len(p) + e - s for p, s, e in self._parts) + len(self._trailer)
        self._index = 0
        self._position: int | None = None
        self._file: BinaryIO | None = None

    def next_chunk(self) -> bytes | None:
        if self._index >= len(self._parts):
            if self._trailer:
                trailer, self._trailer = self._trailer, b""
                return trailer
            self.close()
            return None
        preamble, start, end = self._parts[self._index]
        if self._file is None:
            self._file = self.sent.path.open("rb")
        if self._position is None:
            self._file.seek(start)
            self._position = start
        data = self._file.read(min(self.chunk_bytes, end - self._position))
        if not data and end > self._position:
            self.close()
            raise OSError(f"{self.sent.filename} shrank while it was being sent")
        first = self._position == start
        self._position += len(data)
        if self._position >= end:
            self._index += 1
            self._position = None
        return preamble + data if first else data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
