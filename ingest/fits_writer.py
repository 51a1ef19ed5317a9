"""Writing FITS files from Lick header templates (for demo data, tests and benchmarks).

Headers are handled as lists of 80-character card images, so that a template keeps
the exact layout of the real file it came from (card order, comments, quirks) and a
test can break a file on purpose (drop END or SIMPLE, insert NUL bytes).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from ingest.fits_header import BLOCK, CARD, END_CARD

TEMPLATE_DIR = "lick-headers"
_BYTES_PER_PIXEL = {8: 1, 16: 2, 32: 4, 64: 8, -32: 4, -64: 8}


def template_names() -> list[str]:
    """File names of the packaged Lick header templates (``*-hdu0.txt``)."""
    root = resources.files("ingest").joinpath("templates", TEMPLATE_DIR)
    return sorted(p.name for p in root.iterdir() if p.name.endswith("-hdu0.txt"))


def load_template(name: str) -> list[str]:
    """The cards of a packaged template, each padded to 80 characters."""
    root = resources.files("ingest").joinpath("templates", TEMPLATE_DIR)
    raw = root.joinpath(name).read_bytes().decode("ascii", "replace")
    return cards_from_text(raw)


def cards_from_text(raw: str) -> list[str]:
    """Cards from a one-card-per-line header dump (no END card)."""
    return [line[:CARD].ljust(CARD) for line in raw.splitlines() if line.strip() != "END"]


def format_value(value: str | bool | int | float | None) -> str:
    """The fixed-format value field (columns 11-30, strings from column 11)."""
    if value is None:
        return " " * 20
    if isinstance(value, bool):
        return ("T" if value else "F").rjust(20)
    if isinstance(value, int):
        return str(value).rjust(20)
    if isinstance(value, float):
        text = repr(value).upper()
        if "E" not in text and "." not in text:
            text += ".0"
        return text.rjust(20)
    quoted = "'" + value.replace("'", "''").ljust(8) + "'"
    return quoted.ljust(20)


def format_card(keyword: str, value: str | bool | int | float | None, comment: str = "") -> str:
    body = f"{keyword.upper():<8}= {format_value(value)}"
    if comment:
        body += f" / {comment}"
    return body[:CARD].ljust(CARD)


def set_card(
    cards: list[str], keyword: str, value: str | bool | int | float | None,
    comment: str | None = None,
) -> None:
    """Replace the first card of ``keyword`` (keeping its comment) or append one."""
    key = keyword.ljust(8)
    for i, image in enumerate(cards):
        if image.startswith(key):
            if comment is None:
                slash = image.find(" / ", 10)
                comment = image[slash + 3 :].rstrip() if slash >= 0 else ""
            cards[i] = format_card(keyword, value, comment)
            return
    cards.append(format_card(keyword, value, comment or ""))


def remove_card(cards: list[str], keyword: str) -> None:
    key = keyword.ljust(8)
    cards[:] = [c for c in cards if not c.startswith(key)]


def get_card(cards: Iterable[str], keyword: str) -> str | None:
    key = keyword.ljust(8)
    for image in cards:
        if image.startswith(key):
            return image
    return None


def header_bytes(cards: list[str], *, end: bool = True) -> bytes:
    """The header blocks: the cards, END (unless ``end`` is False), blank padding."""
    text = "".join(c[:CARD].ljust(CARD) for c in cards) + (END_CARD if end else "")
    padded = -(-len(text) // BLOCK) * BLOCK
    return text.ljust(padded).encode("ascii", "replace")


def data_size(cards: list[str]) -> int:
    """Bytes of the primary array the cards declare (0 if they declare none)."""
    values: dict[str, int] = {}
    for image in cards:
        keyword = image[:8].rstrip()
        if keyword in ("BITPIX", "NAXIS") or keyword.startswith("NAXIS"):
            try:
                values.setdefault(keyword, int(image[10:].split("/")[0]))
            except ValueError:
                continue
    naxis = values.get("NAXIS", 0)
    size = _BYTES_PER_PIXEL.get(values.get("BITPIX", 8), 1) if naxis else 0
    for i in range(1, naxis + 1):
        size *= values.get(f"NAXIS{i}", 0)
    return size


def write_fits(path: Path, cards: list[str], data: bytes | None = None, *,
               end: bool = True) -> int:
    """Write header and data; without ``data`` the array is zeros (a sparse file).

    Returns the file size.  The data are padded to whole blocks with zeros.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    head = header_bytes(cards, end=end)
    size = data_size(cards)
    total = len(head) + -(-size // BLOCK) * BLOCK
    with path.open("wb") as handle:
        handle.write(head)
        if data is not None:
            handle.write(data)
        handle.truncate(total)
    return os.path.getsize(path)
