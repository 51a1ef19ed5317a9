"""Parsing an uploaded VOTable (TAP UPLOAD) into columns and rows, safely.

The upload is untrusted: lxml parses it without DTDs, entity expansion or network
access, a document with a DOCTYPE is refused outright (no billion laughs, no
external entities), and the byte size is checked before parsing and the row count
while decoding.  The first TABLE is read (TABLEDATA, BINARY or BINARY2 with inline
base64); its FIELDs become :class:`tap_schema.model.Column` objects with ADQL-legal
lower-case names, so the caller can create a temporary table from the same
declaration vocabulary as the published ones.

Values come out ready for psycopg2: numbers, booleans, str, datetimes, lists for
arrays, and pgSphere literals (in degrees) for DALI point/circle/polygon cells, so
that an INSERT into spoint/scircle/spoly columns needs no further conversion.  Each
value is checked against its storage type (:mod:`upload_values`), so that whatever a
hostile or careless client sends, either ValueError says what is wrong or PostgreSQL
takes every row.

What is refused, with a message: multi-dimensional arrays (``arraysize="2x3"``: ADQL
cannot address their elements, and the element count of a variable one is read
differently by different VOTable libraries), boolean arrays, geometry columns without
a matching arraysize, fixed arrays with a missing element.  A char string in BINARY
ends at its first NUL byte (VOTable 1.4 sect. 6, the FITS rule), so a NUL never
reaches PostgreSQL, whose text cannot hold it; XML cannot carry one at all.  A fixed
numeric array longer than :data:`MAX_FIXED_ELEMENTS` is kept as a variable-length
one, so that a huge declared size cannot make a result writer allocate for it.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from tap_schema.model import Column
from vo_service.serialize import upload_values as check

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_ROWS = 100_000
MAX_COLUMNS = 500
MAX_FIXED_ELEMENTS = 1024
_MAX_NAME = 48  # an ADQL name, leaving room for "_nnn" within PostgreSQL's 63 bytes

_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*\Z")
_GEOMETRY = {"point": (2, "spoint"), "circle": (3, "scircle"), "polygon": (None, "spoly")}
_SCALAR_PG = {
    "boolean": "boolean", "unsignedByte": "smallint", "short": "smallint", "int": "integer",
    "long": "bigint", "float": "real", "double": "double precision",
}
# datatype -> (struct code, size in bytes)
_BINARY = {
    "boolean": ("c", 1), "unsignedByte": ("B", 1), "short": ("h", 2), "int": ("i", 4),
    "long": ("q", 8), "float": ("f", 4), "double": ("d", 8), "char": ("s", 1),
    "unicodeChar": ("s", 2),
}


@dataclass(frozen=True)
class UploadedTable:
    """The first table of an uploaded VOTable, ready to become a temporary table."""

    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True)
class _Field:
    name: str
    datatype: str
    arraysize: str | None
    xtype: str | None
    null: str | None

    @property
    def fixed_count(self) -> int | None:
        """Elements per cell for fixed sizes; None for variable ('*', 'n*')."""
        if self.arraysize is None:
            return 1
        if self.arraysize.endswith("*"):
            return None
        return int(self.arraysize)

    @property
    def is_scalar(self) -> bool:
        return self.arraysize in (None, "1")

    @property
    def is_geometry(self) -> bool:
        return self.xtype in _GEOMETRY and self.datatype in ("float", "double")

    @property
    def is_timestamp(self) -> bool:
        return self.xtype == "timestamp" and self.datatype in ("char", "unicodeChar")


def parse_votable(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES,
                  max_rows: int = DEFAULT_MAX_ROWS) -> UploadedTable:
    """Parse ``data`` (an uploaded VOTable); raises ValueError saying what is wrong."""
    if len(data) > max_bytes:
        raise ValueError(f"the uploaded table is {len(data)} bytes; the limit is {max_bytes}")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, dtd_validation=False, remove_comments=True,
                             remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"the upload is not well-formed XML: {exc}") from exc
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise ValueError("the uploaded VOTable has a DOCTYPE; DTDs and entities are refused")
    if _local(root) != "VOTABLE":
        raise ValueError(f"the upload is not a VOTable (its root element is {_local(root)})")
    table = next((el for el in root.iter() if _local(el) == "TABLE"), None)
    if table is None:
        raise ValueError("the uploaded VOTable has no TABLE")
    fields = [_field(el) for el in table if _local(el) == "FIELD"]
    if not fields:
        raise ValueError("the uploaded table has no FIELD")
    if len(fields) > MAX_COLUMNS:
        raise ValueError(f"the uploaded table has {len(fields)} columns; at most "
                         f"{MAX_COLUMNS} are accepted")
    columns = _columns(fields)
    rows = _rows(table, fields, max_rows)
    return UploadedTable(columns=columns, rows=rows)


def _local(element: Any) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _field(element: etree._Element) -> _Field:
    name = (element.get("name") or element.get("ID") or "").strip()
    datatype = element.get("datatype")
    if not name:
        raise ValueError("a FIELD of the uploaded table has no name")
    if datatype is None:
        raise ValueError(f"FIELD {name!r} has no datatype")
    if datatype not in _BINARY:
        raise ValueError(f"FIELD {name!r} has datatype {datatype!r}, which uploads do not "
                         f"support (use one of {', '.join(_BINARY)})")
    arraysize = element.get("arraysize")
    if arraysize is not None:
        arraysize = arraysize.strip()
        if not re.fullmatch(r"(\d+x)*(\d+|\d*\*)", arraysize):
            raise ValueError(f"FIELD {name!r} has a malformed arraysize {arraysize[:40]!r}")
        if "x" in arraysize:
            raise ValueError(f"FIELD {name!r} is a multi-dimensional array (arraysize "
                             f"{arraysize[:40]!r}); uploads take scalars and one-dimensional "
                             "arrays only: flatten the column or leave it out")
        if not arraysize.endswith("*"):
            arraysize = str(int(arraysize))
        if arraysize == "0":
            raise ValueError(f"FIELD {name!r} has arraysize 0")
        if datatype == "boolean" and arraysize != "1":
            raise ValueError(f"FIELD {name!r} is a boolean array, which uploads do not "
                             "support")
    null = None
    for child in element:
        if _local(child) == "VALUES":
            null = child.get("null")
    field = _Field(name, datatype, arraysize, (element.get("xtype") or "").strip() or None,
                   null)
    if field.is_geometry:
        want = check.GEOMETRY_SIZES[field.xtype or ""]
        count = field.fixed_count
        if arraysize is None or (count is not None and (
                count != want if want is not None else count < 6 or count % 2)):
            raise ValueError(f"FIELD {name!r} of xtype {field.xtype} needs arraysize "
                             f"{want or '*'}, not {arraysize}")
    return field


def adql_name(name: str, taken: set[str]) -> str:
    """A lower-case regular ADQL identifier from a column name, unique within ``taken``."""
    from vo_service.adql.parser import keywords

    candidate = re.sub(r"[^a-z0-9_]", "_", name.strip().lower())[:_MAX_NAME]
    if not candidate or not candidate[0].isalpha():
        candidate = "col_" + candidate
    if candidate.upper() in keywords():
        candidate += "_"
    base, n = candidate, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate)
    return candidate


def _columns(fields: list[_Field]) -> tuple[Column, ...]:
    taken: set[str] = set()
    out = []
    for f in fields:
        name = adql_name(f.name, taken)
        out.append(_column(f, name))
    return tuple(out)


def _column(f: _Field, name: str) -> Column:
    description = f"uploaded column {f.name}"
    if f.xtype in _GEOMETRY and f.datatype in ("float", "double"):
        count, pg_type = _GEOMETRY[f.xtype]
        return Column(name=name, datatype="double", description=description,
                      arraysize=str(count) if count else "*", xtype=f.xtype, pg_type=pg_type)
    if f.datatype in ("char", "unicodeChar"):
        if f.xtype == "timestamp":
            return Column(name=name, datatype="char", arraysize="*", xtype="timestamp",
                          description=description, pg_type="timestamp without time zone")
        return Column(name=name, datatype="char", arraysize="*", description=description,
                      pg_type="text")
    datatype = "short" if f.datatype == "unsignedByte" else f.datatype
    pg = _SCALAR_PG[f.datatype]
    count = f.fixed_count
    if f.is_scalar:
        return Column(name=name, datatype=datatype, description=description, pg_type=pg)
    arraysize = f.arraysize if count is not None and count <= MAX_FIXED_ELEMENTS else "*"
    return Column(name=name, datatype=datatype, arraysize=arraysize,
                  description=description, pg_type=pg + "[]")


# ---------------------------------------------------------------- cells


def _text_scalar(datatype: str, text: str) -> Any:
    if datatype == "boolean":
        low = text.strip().lower()
        if low in ("t", "true", "1"):
            return True
        if low in ("f", "false", "0"):
            return False
        if low in ("", "?"):
            return None
        raise ValueError(f"{text[:40]!r} is not a boolean")
    if datatype in ("float", "double"):
        low = text.strip().lower()
        special = {"nan": math.nan, "+inf": math.inf, "inf": math.inf, "-inf": -math.inf}
        return special[low] if low in special else float(text)
    value = text.strip()
    if value.lower().startswith(("0x", "+0x")):
        return int(value, 16)
    return int(value)


def _finish(f: _Field, value: Any) -> Any:
    """Apply the VALUES null, check the value against its storage type, and turn DALI
    geometry arrays into pgSphere literals and timestamps into datetimes."""
    if value is None:
        return None
    if f.null is not None and not isinstance(value, list) and str(value) == f.null:
        return None
    if isinstance(value, str):
        if not f.is_timestamp:
            return value
        return check.timestamp(value) if value.strip() else None
    if not isinstance(value, list):
        return check.number(f.datatype, value)
    if f.is_geometry:
        if not value or all(math.isnan(v) for v in value):
            return None
        return check.geometry_literal(f.xtype or "", value)
    if f.fixed_count is not None and len(value) != f.fixed_count:
        raise ValueError(f"{len(value)} elements in an array of arraysize {f.arraysize}")
    return [check.number(f.datatype, v) for v in value]


def _text_cell(f: _Field, text: str | None) -> Any:
    if text is None or text == "":
        return None
    if f.datatype in ("char", "unicodeChar"):
        return _finish(f, text)
    if f.null is not None and text.strip() == f.null:
        return None
    if f.is_scalar:
        return _finish(f, _text_scalar(f.datatype, text))
    items = text.split()
    if not items:
        return None
    return _finish(f, [_text_scalar(f.datatype, item) for item in items])


def _rows(table: etree._Element, fields: list[_Field], max_rows: int) -> list[tuple[Any, ...]]:
    data = next((el for el in table if _local(el) == "DATA"), None)
    if data is None:
        return []
    body = next((el for el in data if isinstance(el.tag, str)), None)
    if body is None:
        return []
    kind = _local(body)
    if kind == "TABLEDATA":
        return _tabledata(body, fields, max_rows)
    if kind in ("BINARY", "BINARY2"):
        stream = next((el for el in body if _local(el) == "STREAM"), None)
        if stream is None:
            raise ValueError(f"{kind} without a STREAM")
        if stream.get("href"):
            raise ValueError("remote STREAM references are not followed; inline the data")
        if (stream.get("encoding") or "") != "base64":
            raise ValueError(f"STREAM encoding {stream.get('encoding')!r} is not supported; "
                             "use base64")
        try:
            raw = base64.b64decode("".join((stream.text or "").split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"the base64 STREAM is corrupt: {exc}") from exc
        return _binary(raw, fields, max_rows, binary2=kind == "BINARY2")
    raise ValueError(f"{kind} data is not supported in uploads; use TABLEDATA or BINARY2")


def _tabledata(body: etree._Element, fields: list[_Field], max_rows: int
               ) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for tr in body:
        if _local(tr) != "TR":
            continue
        if len(rows) >= max_rows:
            raise ValueError(f"the uploaded table has more than {max_rows} rows")
        cells = [td for td in tr if _local(td) == "TD"]
        if len(cells) != len(fields):
            raise ValueError(f"row {len(rows) + 1} has {len(cells)} cells for "
                             f"{len(fields)} FIELDs")
        try:
            row = [_text_cell(f, td.text) for f, td in zip(fields, cells, strict=True)]
        except ValueError as exc:
            raise ValueError(f"row {len(rows) + 1}: {exc}") from exc
        rows.append(tuple(row))
    return rows


def _binary(raw: bytes, fields: list[_Field], max_rows: int, *, binary2: bool
            ) -> list[tuple[Any, ...]]:
    readers = [_binary_reader(f) for f in fields]
    flag_bytes = (len(fields) + 7) // 8 if binary2 else 0
    rows: list[tuple[Any, ...]] = []
    pos = 0
    end = len(raw)
    while pos < end:
        if len(rows) >= max_rows:
            raise ValueError(f"the uploaded table has more than {max_rows} rows")
        flags = int.from_bytes(raw[pos:pos + flag_bytes], "big") if flag_bytes else 0
        pos += flag_bytes
        row = []
        try:
            for index, (f, read) in enumerate(zip(fields, readers, strict=True)):
                value, pos = read(raw, pos)
                if flag_bytes and flags >> (8 * flag_bytes - 1 - index) & 1:
                    value = None
                row.append(_finish(f, value))
        except struct.error as exc:
            raise ValueError(f"the binary STREAM ends inside row {len(rows) + 1}") from exc
        except ValueError as exc:
            raise ValueError(f"row {len(rows) + 1}: {exc}") from exc
        rows.append(tuple(row))
    return rows


def _binary_reader(f: _Field) -> Callable[[bytes, int], tuple[Any, int]]:
    code, size = _BINARY[f.datatype]
    fixed = f.fixed_count

    def count_at(raw: bytes, pos: int) -> tuple[int, int]:
        """(elements, position of the first); the elements are known to be there."""
        if fixed is None:
            (n,) = struct.unpack_from(">i", raw, pos)
            pos += 4
        else:
            n = fixed
        if n < 0 or pos + n * size > len(raw):
            raise struct.error("bad array length")
        return n, pos

    if f.datatype in ("char", "unicodeChar"):
        encoding = "utf-16-be" if f.datatype == "unicodeChar" else "latin-1"

        def read_text(raw: bytes, pos: int) -> tuple[Any, int]:
            n, pos = count_at(raw, pos)
            chunk = raw[pos:pos + n * size]
            # VOTable: a string ends at its first NUL (what follows is undefined).
            text = chunk.decode(encoding, "replace").split("\x00", 1)[0]
            return (text if text or fixed is None else None), pos + n * size

        return read_text
    def convert(item: Any) -> Any:
        letter = item.decode("latin-1").lower()
        return True if letter in ("t", "1") else False if letter in ("f", "0") else None

    def read_values(raw: bytes, pos: int) -> tuple[Any, int]:
        n, pos = count_at(raw, pos)
        values: list[Any] = list(struct.unpack_from(f">{n}{code}", raw, pos))
        if f.datatype == "boolean":
            values = [convert(v) for v in values]
        pos += n * size
        if f.is_scalar:
            value = values[0]
            if isinstance(value, float) and math.isnan(value):
                return None, pos
            return value, pos
        return values, pos

    return read_values
