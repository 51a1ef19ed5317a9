"""A real browser (headless Chromium) loads the login page under its strict CSP.

``--dump-dom`` shows the DOM Chromium built (the form, its CSRF field); a screenshot
shows the stylesheet was allowed and applied (the header's colour at the top-left
pixel), which a plain HTTP client cannot tell.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEADER_RGB = (0x18, 0x24, 0x3A)  # header background in vo_service/web/static/style.css

pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="Chromium is not installed (Debian package chromium)")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, check=False)


def _first_pixel(png: bytes) -> tuple[int, int, int]:
    """RGB of pixel (0, 0): for the first pixel every PNG filter leaves the bytes as is."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, color_type = 8, b"", None
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset:offset + 4])
        kind = png[offset + 4:offset + 8]
        data = png[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            bit_depth, color_type = data[8], data[9]
            assert bit_depth == 8 and color_type in (2, 6)
        elif kind == b"IDAT":
            idat += data
        offset += 12 + length
    raw = zlib.decompressobj().decompress(idat, 16)
    return raw[1], raw[2], raw[3]  # raw[0] is the filter byte of the first row


def test_chromium_renders_the_login_page(server):
    dom = _chromium("--dump-dom", f"{server.base_url}/login?next=/admin")
    assert dom.returncode == 0, dom.stderr
    html = dom.stdout
    assert '<form class="card narrow" method="post" action="/login">' in html
    assert 'name="csrf_token"' in html and 'type="password"' in html
    assert 'name="next" value="/admin"' in html

    with tempfile.TemporaryDirectory() as out:
        shot = Path(out) / "login.png"
        result = _chromium(f"--screenshot={shot}", "--window-size=900,700",
                           "--hide-scrollbars", f"{server.base_url}/login")
        assert result.returncode == 0, result.stderr
        pixel = _first_pixel(shot.read_bytes())
    assert all(abs(a - b) <= 6 for a, b in zip(pixel, HEADER_RGB, strict=True)), pixel
