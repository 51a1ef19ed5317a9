"""Preview PNGs of FITS images: rendered on first request, cached on disk, bounded.

Rendering is CPU work (read the pixels, zscale them as astronomers expect to see raw
frames, encode a PNG): it runs on the ``compute_limiter`` so that it never takes a
thread from downloads or queries.  The result is cached under
``<data_dir>/previews`` by a key of the dataset identifier and the file's validator
(its checksum, else size and mtime), so a re-ingested file gets a new preview and
the old one ages out.

The cache is bounded by ``[downloads] preview_cache_bytes``: when a new preview takes
it beyond that, the least recently *used* previews are removed, by access time, which
:meth:`PreviewCache.get` sets itself (``relatime`` and ``noatime`` mounts would not).
Previews are written to a temporary file in the same directory and renamed into
place, so a reader never sees half a PNG and a crash leaves at most a stray temporary
file, swept at the next trim.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger("lick_archive.previews")

PNG_MEDIA_TYPE = "image/png"
_TEMP_PREFIX = ".partial-"


class PreviewUnavailable(Exception):
    """The file holds no image a preview can be made of (the message says why)."""


def preview_key(did: str, validator: str) -> str:
    return hashlib.sha256(f"{did}\n{validator}".encode("utf-8", "surrogatepass")).hexdigest()


class PreviewCache:
    """PNG files by key, at most ``max_bytes`` in total (least recently used go first)."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._total: int | None = None  # bytes cached, counted on first use

    def path_of(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.png"

    def get(self, key: str) -> Path | None:
        """The cached preview, marked as just used; None when absent."""
        path = self.path_of(key)
        try:
            now = time.time()
            os.utime(path, (now, path.stat().st_mtime))
        except FileNotFoundError:
            return None
        return path

    def put(self, key: str, png: bytes) -> Path:
        """Store a preview atomically, then trim the cache to its bound."""
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(png)
            existed = path.exists()
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        with self._lock:
            if self._total is None:
                self._total = self._scan_total()
            elif not existed:
                self._total += len(png)
            if self._total > self.max_bytes:
                self._trim(keep=path)
        return path

    def _files(self) -> list[os.DirEntry[str]]:
        entries: list[os.DirEntry[str]] = []
        if not self.directory.is_dir():
            return entries
        with os.scandir(self.directory) as top:
            for sub in top:
                if sub.is_dir(follow_symlinks=False):
                    with os.scandir(sub.path) as inner:
                        entries.extend(e for e in inner if e.is_file(follow_symlinks=False))
        return entries

    def _scan_total(self) -> int:
        return sum(e.stat().st_size for e in self._files()
                   if not e.name.startswith(_TEMP_PREFIX))

    def _trim(self, keep: Path) -> None:
        """Remove least recently used previews down to 90 % of the bound (so that one
        new preview does not trigger a scan every time), and stale temporaries."""
        target = int(self.max_bytes * 0.9)
        stale = time.time() - 3600
        files = []
        for entry in self._files():
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue
            if entry.name.startswith(_TEMP_PREFIX):
                if stat.st_mtime < stale:
                    Path(entry.path).unlink(missing_ok=True)
                continue
            files.append((stat.st_atime, stat.st_size, entry.path))
        files.sort()
        total = sum(size for _, size, _ in files)
        for _, size, name in files:
            if total <= target:
                break
            if name == str(keep):
                continue
            Path(name).unlink(missing_ok=True)
            total -= size
        self._total = total

    @property
    def total_bytes(self) -> int:
        with self._lock:
            if self._total is None:
                self._total = self._scan_total()
            return self._total


def render_png(path: Path, max_size: int) -> bytes:
    """A zscaled 8-bit PNG of the first image in a FITS file, at most ``max_size``
    pixels on its longer side (blocks are averaged, so noise does not alias)."""
    from astropy.visualization import ZScaleInterval
    from PIL import Image

    try:
        with warnings.catch_warnings():  # broken headers are normal here, not news
            warnings.simplefilter("ignore")
            image = _first_image(path)
    except PreviewUnavailable:
        raise
    except Exception as exc:  # broken files are normal in this archive
        raise PreviewUnavailable(f"the file cannot be read as FITS ({type(exc).__name__})"
                                 ) from exc
    factor = max(1, -(-max(image.shape) // max(1, max_size)))
    if factor > 1:
        rows, cols = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
        if rows and cols:
            image = image[:rows, :cols].reshape(
                rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))
        else:
            image = image[::factor, ::factor]
    finite = np.isfinite(image)
    if not finite.any():
        raise PreviewUnavailable("the image has no finite pixel values")
    image = np.where(finite, image, float(np.median(image[finite])))
    low, high = ZScaleInterval().get_limits(image)
    if not high > low:
        high = low + 1.0
    scaled = np.clip((image - low) / (high - low), 0.0, 1.0)
    pixels = (scaled * 255.0 + 0.5).astype(np.uint8)[::-1]  # FITS rows run bottom-up
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(out, format="PNG")
    return out.getvalue()


def _first_image(path: Path) -> np.ndarray:
    """The first 2-D array of numbers in the file (of a cube: its first plane)."""
    from astropy.io import fits

    with fits.open(path, memmap=False, ignore_missing_end=True,
                   ignore_missing_simple=True, output_verify="ignore") as hdus:
        for hdu in hdus:
            data = getattr(hdu, "data", None)
            if isinstance(data, np.ndarray) and data.ndim >= 2 \
                    and data.dtype.kind in "iuf" and min(data.shape[-2:]) > 0:
                while data.ndim > 2:
                    data = data[0]
                return np.array(data, dtype=np.float32)
    raise PreviewUnavailable("the file holds no image (no 2-D array of numbers)")
