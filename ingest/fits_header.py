"""Fast, forgiving reader of the primary FITS header of archive files.

The archive holds decades of files written by several acquisition systems, and broken
files are normal (MISSION §1): a missing END or SIMPLE card, mandatory keywords in the
wrong order, NUL bytes, unparsable cards, data that does not match the header.  This
module reads only the header blocks (2880 bytes at a time until END), parses the
80-character cards itself (astropy's ``Header`` costs about a millisecond per file,
which is the whole ingest budget), repairs what it can and names every repair as an
ingest flag.  It never raises for a file whose header can be read at all; a file that
is not FITS, empty or unreadable yields a :class:`HeaderError` with a reason code.

The checks mirror astropy's ``verify('fix')`` for a primary HDU (the tests compare the
two on the real broken files): SIMPLE first, then BITPIX, NAXIS and NAXISn in order;
keywords of the allowed characters; values that parse.
"""

from __future__ import annotations

import errno
import functools
import math
import os
import re
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, overload

BLOCK = 2880
CARD = 80
END_CARD = "END" + " " * 77
# Headers of the archive's instruments use 1-8 blocks; a file without END stops here.
MAX_HEADER_BLOCKS = 64
_READ_CHUNK = BLOCK * 4
_WHOLE_FILE_CHUNK = 1 << 20

# Repairs and oddities, as stored in lick.files.ingest_flags.
MISSING_END = "missing_end"
MISSING_SIMPLE = "missing_simple"
SIMPLE_FALSE = "simple_false"
NUL_BYTES = "nul_bytes"
NON_ASCII = "non_ascii"
BAD_CARD = "bad_card"
VERIFY_FIXED = "verify_fixed"
BAD_STRUCTURE = "bad_structure"
TRUNCATED = "truncated"
TRAILING_BYTES = "trailing_bytes"

# Reasons a file cannot be read at all (lick.files never gets a row; the loader keeps
# them with the reason and retries when the file changes).
NOT_FITS = "not_fits"
EMPTY = "empty"
PERMISSION_DENIED = "permission_denied"
NOT_A_FILE = "not_a_file"
MISSING = "missing"
IO_ERROR = "io_error"

_KEYWORD_OK = re.compile(r"[A-Z0-9_-]*")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][+-]?\d+)?")
_COMMENTARY = frozenset({"COMMENT", "HISTORY", ""})
_COMMENTARY_FIELDS = frozenset({"COMMENT ", "HISTORY ", "        "})
# Card syntax: keyword fields are 8 characters of [A-Z0-9_-] padded with blanks; a
# value card's field is a string, logical, number or complex number, optionally
# followed by a comment.
_KEYWORD_CHARS = str.maketrans("", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_- |")
_EMBEDDED_BLANK = re.compile(r" [A-Z0-9_-]")
_VALUE = (
    r" *(?:'[^'\n]*(?:''[^'\n]*)*'|[TF]|[+-]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][+-]?\d+)?"
    r"|\( *[+-]?[\d.EeDd+-]+ *, *[+-]?[\d.EeDd+-]+ *\))? *(?:/.*)?"
)
# A value field: the value, then blanks, then the end or a comment (not looked at).
_VALUE_FIELD = re.compile(_VALUE)
_PRINTABLE = bytes(range(0x20, 0x7F))
_PRINTABLE_OR_NUL = b"\0" + _PRINTABLE
# Repairs of a header's bytes: NUL to blank, bytes above 0x7F to "?".
_REPAIR = b" " + bytes(range(1, 0x80)) + b"?" * 0x80
_BITPIX = frozenset({8, 16, 32, 64, -32, -64})
# Bytes other than printable ASCII and NUL in a card before it counts as binary data:
# a stray accented letter is repaired, a block of pixels ends the header.
_MAX_ODD_BYTES = 8

Value = str | bool | int | float | complex | None
_Default = TypeVar("_Default")


@dataclass(frozen=True, slots=True)
class Card:
    """One header card; ``image`` is its 80-character text after repairs."""

    keyword: str
    value: Value
    comment: str
    image: str


@dataclass(frozen=True)
class HeaderError:
    """Why a file has no readable FITS header; ``reason`` is a stable code."""

    reason: str
    detail: str = ""


class FitsHeader:
    """The primary header: cards in file order, first occurrence wins on lookup.

    Values are parsed when first asked for (a reader looks at a few dozen of the
    100-250 cards); the syntax of every card is checked up front, so ``flags`` do
    not depend on what was asked.  ``header_size`` is the byte offset of the data
    (whole blocks), ``flags`` the repairs made while reading, ``file_size`` the size
    of the file read.

    The cards are kept as their 80 bytes (repaired to printable ASCII) and the index
    by their 8-byte keyword fields: cutting the header into bytes takes one C call
    (:func:`_per_card`), and only the cards asked for are decoded and parsed.
    """

    __slots__ = ("_cards", "_index", "file_size", "flags", "header_size")

    def __init__(
        self,
        cards: tuple[bytes, ...],
        index: Mapping[bytes, int],
        flags: frozenset[str],
        header_size: int,
        file_size: int,
    ) -> None:
        self._cards = cards
        self._index = index
        self.flags = flags
        self.header_size = header_size
        self.file_size = file_size

    def with_flags(self, flags: frozenset[str]) -> FitsHeader:
        return FitsHeader(self._cards, self._index, flags, self.header_size, self.file_size)

    def __contains__(self, keyword: object) -> bool:
        return isinstance(keyword, str) and keyword.ljust(8).encode() in self._index

    def __len__(self) -> int:
        return len(self._cards)

    def __iter__(self) -> Iterator[str]:
        return (key.decode("ascii").rstrip() for key in self._index)

    @overload
    def get(self, keyword: str) -> Value: ...

    @overload
    def get(self, keyword: str, default: _Default) -> Value | _Default: ...

    def get(self, keyword: str, default: object = None) -> object:
        # No per-header cache: _card_value is memoised per card, and a cache miss
        # here (raising KeyError) cost more than the lookup it saved.
        index = self._index.get(keyword.ljust(8).encode())
        if index is None:
            return default
        return _card_value(self._cards[index])

    @property
    def images(self) -> tuple[str, ...]:
        """The 80-character cards, repaired, in file order."""
        return tuple(card.decode("ascii") for card in self._cards)

    @property
    def cards(self) -> tuple[Card, ...]:
        return tuple(_parse_card(image)[0] for image in self.images)

    def text(self) -> str:
        """The header as stored in lick.files.header: one card per line, no END."""
        return b"\n".join(self._cards).decode("ascii")

    @property
    def shape(self) -> tuple[int, ...]:
        """NAXIS1..NAXISn (empty when the header does not say)."""
        naxis = self.get("NAXIS")
        if not isinstance(naxis, int) or isinstance(naxis, bool) or not 0 < naxis <= 999:
            return ()
        dims = []
        for i in range(1, naxis + 1):
            n = self.get(f"NAXIS{i}")
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                return ()
            dims.append(n)
        return tuple(dims)

    @property
    def data_size(self) -> int | None:
        """Bytes of the primary data array (unpadded), None if BITPIX/NAXIS are unusable."""
        bitpix = self.get("BITPIX")
        if not isinstance(bitpix, int) or bitpix not in _BITPIX:
            return None
        naxis = self.get("NAXIS")
        if naxis == 0:
            return 0
        shape = self.shape
        if not shape:
            return None
        return abs(bitpix) // 8 * math.prod(shape)


def parse_value(field: str) -> tuple[Value, str, bool]:
    """Parse the value field (columns 11-80) of a value card.

    Returns (value, comment, ok); ``ok`` is False when the field had to be repaired,
    e.g. an unclosed string (``'nickel_spectrograph / comment``) or an unquoted word.
    """
    stripped = field.lstrip()
    if stripped.startswith("'"):
        # Fast path: one closing quote, no doubled quotes, only blanks or a comment after.
        close = stripped.find("'", 1)
        if close > 0 and not stripped.startswith("'", close + 1):
            rest = stripped[close + 1 :].lstrip()
            if not rest or rest[0] == "/":
                return stripped[1:close].rstrip(), rest[1:].strip(), True
        pieces: list[str] = []
        i = 1
        n = len(stripped)
        while i < n:
            j = stripped.find("'", i)
            if j < 0:
                break
            if j + 1 < n and stripped[j + 1] == "'":
                pieces.append(stripped[i : j + 1])
                i = j + 2
                continue
            pieces.append(stripped[i:j])
            rest = stripped[j + 1 :]
            slash = rest.find("/")
            ok = not rest[: slash if slash >= 0 else None].strip()
            comment = rest[slash + 1 :].strip() if slash >= 0 else ""
            return "".join(pieces).rstrip(), comment, ok
        # Unclosed string: the value runs to the comment slash, if any.
        body = stripped[1:]
        slash = body.find(" /")
        if slash >= 0:
            return body[:slash].strip(), body[slash + 2 :].strip(), False
        return body.strip(), "", False
    slash = stripped.find("/")
    token = (stripped[:slash] if slash >= 0 else stripped).strip()
    comment = stripped[slash + 1 :].strip() if slash >= 0 else ""
    if not token:
        return None, comment, True
    if token == "T":
        return True, comment, True
    if token == "F":
        return False, comment, True
    if _INT.fullmatch(token):
        return int(token), comment, True
    if _FLOAT.fullmatch(token):
        return float(token.replace("D", "E").replace("d", "e")), comment, True
    if token.startswith("(") and token.endswith(")"):
        parts = token[1:-1].split(",")
        if len(parts) == 2:
            try:
                return complex(float(parts[0]), float(parts[1])), comment, True
            except ValueError:
                pass
    return token, comment, False


def _parse_card(image: str) -> tuple[Card, bool]:
    keyword = image[:8].rstrip()
    ok = _KEYWORD_OK.fullmatch(keyword) is not None and " " not in keyword
    if keyword in _COMMENTARY or image[8:10] != "= ":
        if keyword == "END":
            return Card(keyword, None, "", image), ok
        return Card(keyword, None, image[8:].rstrip(), image), ok
    value, comment, value_ok = parse_value(image[10:])
    return Card(keyword, value, comment, image), ok and value_ok


# Archive headers repeat most of their cards verbatim from file to file (same
# instrument, same set-up), so good cards and values are remembered per card; the
# caches are bounded and hold only immutable results.
_CACHE_SIZE = 1 << 16
# Printable cards found good.  Testing a whole header against the set is one C call
# (only the cards not in it are checked): a memoised check called card by card cost
# about 10 us more per header.
_GOOD_CARDS: set[bytes] = set()


def _new_cards(cards: tuple[bytes, ...]) -> set[bytes]:
    """The cards not known to be good (printable, and passing :func:`_card_ok`)."""
    if _GOOD_CARDS.issuperset(cards):
        return set()
    return set(cards).difference(_GOOD_CARDS)


def _check_new_cards(cards: set[bytes], *, remember: bool) -> bool:
    """Whether all ``cards`` pass :func:`_card_ok`.

    With ``remember`` the good ones become known: only for a header that needed no
    repair, so that known cards are printable.
    """
    if len(_GOOD_CARDS) > _CACHE_SIZE:
        _GOOD_CARDS.clear()
    ok = True
    for card in cards:
        if not _card_ok(card.decode("ascii")):
            ok = False
        elif remember:
            _GOOD_CARDS.add(card)
    return ok


def _card_ok(image: str) -> bool:
    """Keyword of the allowed characters and, for a value card, a parsable value."""
    keyword = image[:8]
    if keyword.translate(_KEYWORD_CHARS) or _EMBEDDED_BLANK.search(keyword):
        return False
    if image[8:10] != "= " or keyword in _COMMENTARY_FIELDS:
        return True
    return _VALUE_FIELD.fullmatch(image, 10) is not None


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _card_value(card: bytes) -> Value:
    return parse_value(card[10:].decode("ascii"))[0] if card[8:10] == b"= " else None


@functools.lru_cache(maxsize=256)
def _per_card(layout: str, count: int) -> struct.Struct:
    """A struct that applies ``layout`` to each of ``count`` cards in one C call.

    Cutting a 250-card header into its cards ("80s") or keyword fields ("8s72x") costs
    5 us this way; slicing card by card cost 25 and 16 us.
    """
    return struct.Struct(layout * count)


def _odd_bytes(data: bytes) -> int:
    """Bytes other than printable ASCII and NUL."""
    return len(data.translate(None, _PRINTABLE_OR_NUL))


def _looks_like_first_card(card: bytes) -> bool:
    if _odd_bytes(card) or card.count(0):
        return False
    text = card.decode("ascii")
    keyword = text[:8].rstrip()
    if not keyword or not _KEYWORD_OK.fullmatch(keyword) or " " in keyword:
        return False
    return text[8:10] == "= "


def _find_end(data: bytes) -> int:
    """Byte offset of the first END card (blank or NUL padded), or -1.

    Only the first column of each card is searched for "E" (``data[::CARD]``, one byte
    per card) and the few keywords starting with it are checked: scanning the whole
    header for "END" cost 17 us of a file's 330 us, this costs 2 us.
    """
    first_column = data[::CARD]
    card = first_column.find(b"E")
    while card >= 0:
        at = card * CARD
        if data.startswith(b"END", at) and not data[at + 3 : at + CARD].strip(b" \0"):
            return at
        card = first_column.find(b"E", card + 1)
    return -1


def _repaired(region: bytes, flags: set[str], *, has_end: bool) -> bytes:
    """The cards of the header region as ASCII: NUL bytes blanked, bytes above 0x7F "?".

    Without an END card, the first card that looks like binary data ends the header;
    before a real END card such a card is only damaged and kept (repaired).
    """
    if not has_end:
        for at in range(0, len(region), CARD):
            card = region[at : at + CARD]
            if _odd_bytes(card) > _MAX_ODD_BYTES or card.count(0) == CARD:
                region = region[:at]  # binary data: the header had no END card
                break
    nuls = region.count(0)
    if nuls:
        flags.add(NUL_BYTES)
    if _odd_bytes(region):
        flags.add(NON_ASCII)
    return region.translate(_REPAIR)


def parse_header_bytes(data: bytes, file_size: int | None = None) -> FitsHeader | HeaderError:
    """Parse the primary header from the first bytes of a file (all of its header blocks).

    ``file_size`` enables the data-size checks (``truncated``, ``trailing_bytes``;
    whether an extension follows is checked by :func:`read_primary_header`).
    """
    size = len(data) if file_size is None else file_size
    if not data:
        return HeaderError(EMPTY, "the file is empty")
    if len(data) < CARD or not _looks_like_first_card(data[:CARD]):
        return HeaderError(NOT_FITS, "the file does not start with a FITS header card")
    flags: set[str] = set()
    end = _find_end(data)
    if end < 0:
        flags.add(MISSING_END)
        region = data[: len(data) // CARD * CARD]
    else:
        region = data[:end]
    cards = _per_card("80s", len(region) // CARD).unpack(region)
    new_cards = _new_cards(cards)
    # Known cards are printable ASCII, so when the new ones are too, nothing needs a
    # repair; testing only those spares a scan of the whole region (8 us a header).
    repair = bool(b"".join(new_cards).translate(None, _PRINTABLE))
    if repair:
        region = _repaired(region, flags, has_end=end >= 0)
        cards = _per_card("80s", len(region) // CARD).unpack(region)
        new_cards = _new_cards(cards)
    count = len(cards)
    if MISSING_END in flags:
        used = count * CARD
        # Blank cards that pad the last header block are not part of the header.
        while count and not cards[count - 1].decode("ascii").strip():
            count -= 1
        if count < len(cards):
            cards = cards[:count]
            new_cards = _new_cards(cards)
    else:
        used = end + CARD
    keys = _per_card("8s72x", count).unpack_from(region)
    # First occurrence wins: later duplicates are overwritten by earlier ones.
    # Keys are the 8-byte keyword fields (blank-padded), as in the cards.
    index = dict(zip(reversed(keys), range(count - 1, -1, -1), strict=True))
    if not _check_new_cards(new_cards, remember=not repair):
        flags.add(BAD_CARD)
    header_size = -(-used // BLOCK) * BLOCK
    if b"BITPIX  " not in index and b"NAXIS   " not in index and b"SIMPLE  " not in index:
        return HeaderError(NOT_FITS, "no SIMPLE, BITPIX or NAXIS card")
    header = FitsHeader(cards, index, frozenset(), header_size, size)
    _verify(header, flags)
    data_size = header.data_size
    if data_size is None:
        flags.add(BAD_STRUCTURE)
    elif file_size is not None:
        expected = header_size + -(-data_size // BLOCK) * BLOCK
        if size < header_size + data_size:
            flags.add(TRUNCATED)
        elif size > expected:
            flags.add(TRAILING_BYTES)
    return header.with_flags(frozenset(flags))


def _verify(header: FitsHeader, flags: set[str]) -> None:
    """The primary-HDU checks of the FITS standard (sect. 4.4.1), as flags."""
    index = header._index
    first = header._cards[0][:8].decode("ascii").rstrip()
    if first != "SIMPLE":
        flags.add(MISSING_SIMPLE)
    elif header.get("SIMPLE") is not True:
        flags.add(SIMPLE_FALSE)
    # A replaced SIMPLE card keeps BITPIX second; a deleted one moves it first.
    offset = -1 if first == "BITPIX" else 0
    expected = ["BITPIX", "NAXIS"]
    naxis = header.get("NAXIS")
    if isinstance(naxis, int) and not isinstance(naxis, bool) and 0 <= naxis <= 999:
        expected += [f"NAXIS{i}" for i in range(1, naxis + 1)]
    for position, keyword in enumerate(expected, start=1):
        where = index.get(keyword.ljust(8).encode())
        if where is None or where != position + offset:
            flags.add(VERIFY_FIXED)
            break
    bitpix = header.get("BITPIX")
    if bitpix is not None and bitpix not in _BITPIX:
        flags.add(BAD_STRUCTURE)


def read_primary_header(
    path: Path | str, whole_file: Callable[[bytes], object] | None = None
) -> FitsHeader | HeaderError:
    """Read and parse the primary header of ``path``; never raises for I/O problems.

    ``whole_file``, if given, is called with every byte of a file whose header could be
    read, in order (a hash's ``update``): a checksum then needs no second open of the
    file and no second read of its header blocks.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return HeaderError(MISSING, "the file disappeared")
    except PermissionError as exc:
        return HeaderError(PERMISSION_DENIED, str(exc))
    except IsADirectoryError:
        return HeaderError(NOT_A_FILE, "a directory")
    except OSError as exc:
        return HeaderError(IO_ERROR, str(exc))
    try:
        try:
            size = os.fstat(fd).st_size
            chunks = [os.read(fd, _READ_CHUNK)]
            while _needs_more(chunks, size):
                chunk = os.read(fd, _READ_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
            data = b"".join(chunks) if len(chunks) > 1 else chunks[0]
            header = parse_header_bytes(data[: MAX_HEADER_BLOCKS * BLOCK], size)
            if isinstance(header, FitsHeader) and TRAILING_BYTES in header.flags:
                header = _check_extension(fd, header)
        except IsADirectoryError:
            return HeaderError(NOT_A_FILE, "a directory")
        except OSError as exc:
            if exc.errno == errno.EACCES:
                return HeaderError(PERMISSION_DENIED, str(exc))
            return HeaderError(IO_ERROR, str(exc))
        if whole_file is not None and isinstance(header, FitsHeader):
            try:
                for chunk in chunks:
                    whole_file(chunk)
                while chunk := os.read(fd, _WHOLE_FILE_CHUNK):
                    whole_file(chunk)
            except OSError as exc:
                return HeaderError(IO_ERROR, str(exc))
        return header
    finally:
        os.close(fd)


def _needs_more(chunks: list[bytes], size: int) -> bool:
    """True while the blocks read so far hold no END card and still look like text."""
    total = sum(len(c) for c in chunks)
    if total >= size or total >= MAX_HEADER_BLOCKS * BLOCK:
        return False
    last = chunks[-1]
    start = total - len(last)  # a multiple of CARD unless a read came back short
    if _find_end(last[-start % CARD :]) >= 0:
        return False
    # Binary data instead of cards: the header has no END, stop reading.
    return _odd_bytes(last) < len(last) // 10


def _check_extension(fd: int, header: FitsHeader) -> FitsHeader:
    """A file longer than its primary HDU is fine when an extension follows."""
    data_size = header.data_size or 0
    offset = header.header_size + -(-data_size // BLOCK) * BLOCK
    following = os.pread(fd, 8, offset)
    if following == b"XTENSION":
        return header.with_flags(header.flags - {TRAILING_BYTES})
    return header
