"""Hostile TAP uploads: only ValueError escapes the reader, and what it accepts, a real
PostgreSQL + pgSphere takes.

The insert is the one ``services/tap.py`` makes (a temporary table of the columns'
storage types, ``execute_values``).  pgSphere's own polygon test (self-crossing,
overlapping edges) is the one check left to the database: an arbitrary polygon may
be refused there, with pgSphere's message (docs/tap.md).
"""

from __future__ import annotations

import base64
import math
import struct
from datetime import datetime
from typing import Any

import numpy as np
import psycopg2
import psycopg2.extras
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from psycopg2 import sql

from vo_service.serialize.upload import UploadedTable, parse_votable
from vo_service.serialize.upload_values import INT_RANGES


def _document(fields: str, body: str) -> bytes:
    return ('<VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3" version="1.4"><RESOURCE>'
            f"<TABLE>{fields}<DATA>{body}</DATA></TABLE></RESOURCE></VOTABLE>").encode()


def tabledata(field: str, *cells: str) -> bytes:
    rows = "".join(f"<TR><TD>{cell}</TD></TR>" for cell in cells)
    return _document(field, f"<TABLEDATA>{rows}</TABLEDATA>")


def binary(fields: str, raw: bytes, serialization: str = "BINARY2") -> bytes:
    stream = base64.b64encode(raw).decode()
    return _document(fields, f'<{serialization}><STREAM encoding="base64">{stream}</STREAM>'
                             f"</{serialization}>")


def insert(conn: Any, table: UploadedTable) -> None:
    """What services/tap.py does with an upload, rolled back afterwards."""
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ WRITE")  # the query role's default is not
            columns = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.storage_type))
                for c in table.columns)
            cur.execute(sql.SQL("CREATE TEMP TABLE tap_upload_probe ({}) ON COMMIT DROP"
                                ).format(columns))
            if table.rows:
                psycopg2.extras.execute_values(
                    cur, "INSERT INTO pg_temp.tap_upload_probe VALUES %s", table.rows,
                    page_size=1000)
    finally:
        conn.rollback()


# ---------------------------------------------------------------- each kind, named


@pytest.mark.parametrize("document,message", [
    (tabledata('<FIELD name="a" datatype="short"/>', "70000"), "out of range.*short"),
    (tabledata('<FIELD name="a" datatype="short"/>', "0x10000"), "out of range.*short"),
    (tabledata('<FIELD name="a" datatype="int"/>', str(2**31)), "out of range.*int"),
    (tabledata('<FIELD name="a" datatype="long"/>', str(-(2**63) - 1)), "out of range.*long"),
    (tabledata('<FIELD name="a" datatype="unsignedByte"/>', "-1"), "out of range"),
    (tabledata('<FIELD name="a" datatype="int" arraysize="*"/>', "1 99999999999"),
     "out of range.*int"),
    (tabledata('<FIELD name="a" datatype="long"/>', "9" * 5000), "digits|out of range"),
    (tabledata('<FIELD name="a" datatype="float"/>', "1e39"), "out of range.*float"),
    (tabledata('<FIELD name="t" datatype="char" arraysize="*" xtype="timestamp"/>',
               "0000-01-01T00:00:00"), "timestamp"),
    (tabledata('<FIELD name="t" datatype="char" arraysize="*" xtype="timestamp"/>',
               "99999-01-01T00:00:00"), "timestamp"),
    (tabledata('<FIELD name="t" datatype="char" arraysize="*" xtype="timestamp"/>',
               "2020-02-30"), "timestamp"),
    (tabledata('<FIELD name="t" datatype="char" arraysize="*" xtype="timestamp"/>',
               "yesterday"), "timestamp"),
    (tabledata('<FIELD name="p" datatype="double" arraysize="2" xtype="point"/>', "10 90.5"),
     "latitude"),
    (tabledata('<FIELD name="p" datatype="double" arraysize="2" xtype="point"/>', "+Inf 0"),
     "finite"),
    (tabledata('<FIELD name="p" datatype="double" arraysize="2" xtype="point"/>', "NaN 1"),
     "finite"),
    (tabledata('<FIELD name="p" datatype="double" arraysize="2" xtype="point"/>', "1 2 3"),
     "2 numbers"),
    (tabledata('<FIELD name="c" datatype="double" arraysize="3" xtype="circle"/>', "1 2 -1"),
     "radius"),
    (tabledata('<FIELD name="c" datatype="double" arraysize="3" xtype="circle"/>', "1 2 91"),
     "radius"),
    (tabledata('<FIELD name="g" datatype="double" arraysize="*" xtype="polygon"/>',
               "1 2 3 4"), "at least 6"),
    (tabledata('<FIELD name="g" datatype="double" arraysize="*" xtype="polygon"/>',
               "1 2 1 2 3 4"), "distinct"),
    (tabledata('<FIELD name="g" datatype="double" arraysize="*" xtype="polygon"/>',
               "0 90 120 90 240 90"), "distinct"),  # three names of one pole
    (tabledata('<FIELD name="g" datatype="double" arraysize="*" xtype="polygon"/>',
               "0 0 10 0 10 95"), "latitude"),
    (tabledata('<FIELD name="p" datatype="double" xtype="point"/>', "1"), "arraysize 2"),
    (tabledata('<FIELD name="m" datatype="int" arraysize="2x3"/>', "1 2 3 4 5 6"),
     "multi-dimensional"),
    (tabledata('<FIELD name="m" datatype="char" arraysize="8x*"/>', "abc"),
     "multi-dimensional"),
    (tabledata('<FIELD name="b" datatype="boolean" arraysize="*"/>', "T F"), "boolean array"),
    (tabledata('<FIELD name="v" datatype="int" arraysize="3"/>', "1 2"), "arraysize 3"),
    (tabledata('<FIELD name="v" datatype="int" arraysize="0"/>', ""), "arraysize 0"),
    (tabledata('<FIELD name="s" datatype="char" arraysize="*"/>', "a&#0;b"), "well-formed"),
    (b'<VOTABLE><RESOURCE><TABLE><FIELD name="s" datatype="char" arraysize="*"/><DATA>'
     b"<TABLEDATA><TR><TD>caf\xe9 \xff\xfe</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE>"
     b"</VOTABLE>", "well-formed"),  # not UTF-8
    (binary('<FIELD name="v" datatype="int" arraysize="999999999"/>', b"\x00" + b"\x01" * 64),
     "ends inside row 1"),
    (binary('<FIELD name="s" datatype="char" arraysize="999999999"/>', b"\x00abc"),
     "ends inside row 1"),
    (binary('<FIELD name="s" datatype="char" arraysize="*"/>',
            b"\x00" + struct.pack(">i", 2**31 - 1) + b"abc"), "ends inside row 1"),
    (binary('<FIELD name="s" datatype="char" arraysize="*"/>',
            b"\x00" + struct.pack(">i", -5) + b"abc"), "ends inside row 1"),
    (binary('<FIELD name="p" datatype="double" arraysize="2" xtype="point"/>',
            b"\x00" + struct.pack(">dd", 10, 100)), "row 1: .*latitude"),
])
def test_hostile_values_say_what_is_wrong(document: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_votable(document)


def test_accepted_edge_values_insert(query_connection: Any) -> None:
    """The limits themselves, an underflowing float, NUL in a binary string (the end of
    the string, VOTable 1.4 sect. 6), non-ASCII text, a huge declared size with no
    values, long column names that agree in their first 63 characters."""
    long_name = "x" * 70
    fields = (
        '<FIELD name="s" datatype="short"/><FIELD name="i" datatype="int"/>'
        '<FIELD name="l" datatype="long"/><FIELD name="u" datatype="unsignedByte"/>'
        '<FIELD name="f" datatype="float"/><FIELD name="t" datatype="char" arraysize="*" '
        'xtype="timestamp"/><FIELD name="p" datatype="double" arraysize="2" xtype="point"/>'
        '<FIELD name="c" datatype="double" arraysize="3" xtype="circle"/>'
        '<FIELD name="h" datatype="int" arraysize="999999999"/>'
        f'<FIELD name="{long_name}1" datatype="char" arraysize="*"/>'
        f'<FIELD name="{long_name}2" datatype="unicodeChar" arraysize="*"/>')
    cells = ["-32768", "2147483647", str(-(2**63)), "0xff", "1e-50",
             "9999-12-31T23:59:59.999999Z", "359.99999 -90", "0 90 90", "",
             "a &amp; b", "Łódź ☃ \U0001f52d"]
    document = _document(fields, "<TABLEDATA><TR>" + "".join(f"<TD>{c}</TD>" for c in cells)
                         + "</TR></TABLEDATA>")
    table = parse_votable(document)
    assert table.rows[0][:6] == (-32768, 2147483647, -(2**63), 255, 0.0,
                                 datetime(9999, 12, 31, 23, 59, 59, 999999))
    assert table.columns[8].arraysize == "*"  # not a fixed size of 999,999,999
    names = [c.name for c in table.columns[9:]]
    assert len(set(names)) == 2 and all(len(n) <= 63 for n in names)
    insert(query_connection, table)
    nul = binary('<FIELD name="s" datatype="char" arraysize="*"/>',
                 b"\x00" + struct.pack(">i", 5) + b"ab\x00cd")
    assert parse_votable(nul).rows == [("ab",)]
    insert(query_connection, parse_votable(nul))


# ---------------------------------------------------------------- hypothesis

ACCEPTED_KINDS = [
    ("short", None, None), ("int", None, None), ("long", None, None),
    ("unsignedByte", None, None), ("float", None, None), ("double", None, None),
    ("boolean", None, None), ("int", "*", None), ("short", "3", None), ("double", "*", None),
    ("float", "2", None), ("long", "5*", None), ("int", "999999999", None),
    ("char", "*", None), ("char", None, None), ("char", "4", None), ("unicodeChar", "*", None),
    ("char", "*", "timestamp"), ("unicodeChar", "19", "timestamp"),
    ("double", "2", "point"), ("double", "*", "point"), ("float", "3", "circle"),
    ("double", "3", "circle"), ("double", "*", "polygon"),
]
REFUSED_KINDS = [("int", "2x3", None), ("boolean", "*", None), ("double", None, "point"),
                 ("floatComplex", None, None), ("int", "0", None)]
# Mostly columns an upload may have, so that most examples reach their values.
kinds = st.lists(st.sampled_from(ACCEPTED_KINDS * 6 + REFUSED_KINDS), min_size=1, max_size=4)


def _field(kind: tuple[str, str | None, str | None], index: int) -> str:
    datatype, arraysize, xtype = kind
    extra = (f' arraysize="{arraysize}"' if arraysize else "") + (
        f' xtype="{xtype}"' if xtype else "")
    return f'<FIELD name="c{index}" datatype="{datatype}"{extra}/>'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from([str(2**15), str(-(2**15) - 1), str(2**31), str(2**63), "255", "256",
                     "0x7fff", "0xffff", "-0", "1_000", "NaN", "+Inf", "-Inf", "1e39",
                     "1e-50", "3.4028235e38", "1e400", ""]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
timestamps = st.one_of(
    st.datetimes().map(datetime.isoformat),
    st.datetimes().map(lambda d: d.isoformat(sep=" ") + "Z"),
    st.sampled_from(["0000-01-01T00:00:00", "99999-01-01", "2020-02-30", "2020-01-01T24:00",
                     "T", "2020-01-01T00:00:00+14:00", "0001-01-01T00:00:00+01:00",
                     "9999-12-31T23:59:59-01:00", ""]),
    st.text(max_size=30),
)
coordinates = st.floats(allow_nan=True, allow_infinity=True, width=64)


@st.composite
def convex_polygons(draw: st.DrawFn) -> str:
    """A small polygon pgSphere takes: n vertices on a circle around a centre."""
    n = draw(st.integers(min_value=3, max_value=12))
    ra = draw(st.floats(min_value=-720, max_value=720))
    dec = draw(st.floats(min_value=-60, max_value=60))
    radius = draw(st.floats(min_value=1e-3, max_value=5))
    values = []
    for k in range(n):
        angle = 2 * math.pi * k / n
        values += [ra + radius * math.cos(angle) / math.cos(math.radians(dec)),
                   dec + radius * math.sin(angle)]
    return " ".join(map(repr, values))


geometry_cells = st.one_of(
    st.lists(coordinates, max_size=4).map(lambda v: " ".join(map(repr, v))),
    convex_polygons(),
    # a valid polygon spoiled in one of the listed ways
    st.tuples(convex_polygons(), st.sampled_from(["NaN", "+Inf", "95", "-90.0001", ""]),
              st.integers(0, 30)).map(lambda t: " ".join(
                  [*t[0].split()[:t[2]], t[1], *t[0].split()[t[2] + 1:]])),
    st.sampled_from(["0 -90 90 -90 180 -90", "1 2 1 2 3 4", "1 2 3 4", "10 20 -1",
                     "10 20 91", "10 20 90", "0 0 0", "360 90"]),
)
strings = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=200)
cells = st.one_of(numbers, timestamps, geometry_cells, strings,
                  st.lists(numbers, max_size=6).map(" ".join))


def cell_for(kind: tuple[str, str | None, str | None]) -> st.SearchStrategy[str]:
    """Mostly a cell of the column's own kind (extreme or broken), sometimes any cell."""
    datatype, arraysize, xtype = kind
    if xtype == "timestamp":
        own = timestamps
    elif xtype is not None:
        own = geometry_cells
    elif datatype in ("char", "unicodeChar"):
        own = strings
    else:
        element: st.SearchStrategy[str] = numbers
        if datatype in INT_RANGES:
            low, high = INT_RANGES[datatype]
            element = st.one_of(st.integers(low, high).map(str), numbers)
        elif datatype in ("float", "double"):
            element = st.one_of(st.floats(width=32 if datatype == "float" else 64).map(repr),
                                numbers)
        own = element if arraysize in (None, "1") else st.lists(element, max_size=6).map(
            " ".join)
    return st.one_of(own, own, own, cells)


def _check(connection: Any, document: bytes) -> None:
    try:
        table = parse_votable(document)
    except ValueError as exc:
        event(f"refused: {str(exc)[:60]}")
        return  # refused with a message: the caller answers 400
    try:
        insert(connection, table)
    except psycopg2.Error as exc:
        # pgSphere's own polygon test is the one check left to the database.
        polygon = any(c.storage_type == "spoly" for c in table.columns)
        assert polygon and "spherepoly" in str(exc), f"accepted, then refused: {exc}"
        event("a polygon pgSphere refuses")
        return
    event(f"inserted {len(table.rows)} rows" if table.rows else "inserted, no rows")


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@SETTINGS
@given(fields=kinds, data=st.data())
def test_any_tabledata_upload_is_refused_or_inserts(query_connection: Any, fields: list[Any],
                                                    data: st.DataObject) -> None:
    row = st.tuples(*(cell_for(k) for k in fields))
    rows = data.draw(st.lists(row, max_size=4))
    body = "".join("<TR>" + "".join(f"<TD>{_escape(c)}</TD>" for c in cells) + "</TR>"
                   for cells in rows)
    declared = "".join(_field(k, i) for i, k in enumerate(fields))
    _check(query_connection, _document(declared, f"<TABLEDATA>{body}</TABLEDATA>"))


_SIZES = {"boolean": 1, "unsignedByte": 1, "short": 2, "int": 4, "long": 8, "float": 4,
          "double": 8, "char": 1, "unicodeChar": 2, "floatComplex": 8}
_CODES = {"float": ">f4", "double": ">f8"}


@st.composite
def binary_cell(draw: st.DrawFn, kind: tuple[str, str | None, str | None]) -> bytes:
    """One cell's bytes as a BINARY writer lays them out, with arbitrary content
    (geometry and floats mostly from real numbers, so that their checks are reached)."""
    datatype, arraysize, _ = kind
    fixed = None if arraysize is None or arraysize.endswith("*") else int(
        arraysize.split("x")[0]) if "x" not in arraysize else 6
    count = 1 if arraysize is None else fixed if fixed is not None and fixed < 100 else \
        draw(st.integers(0, 8))
    size = _SIZES[datatype]
    if datatype in _CODES and draw(st.booleans()):
        with np.errstate(over="ignore"):  # a double beyond float32 becomes inf there too
            content = np.array([draw(coordinates) for _ in range(count)],
                               dtype=_CODES[datatype]).tobytes()
    else:
        content = draw(st.binary(min_size=count * size, max_size=count * size))
    prefix = struct.pack(">i", count) if fixed is None and arraysize is not None else b""
    return prefix + content


@SETTINGS
@given(fields=kinds, serialization=st.sampled_from(["BINARY", "BINARY2"]), data=st.data())
def test_any_binary_upload_is_refused_or_inserts(query_connection: Any, fields: list[Any],
                                                 serialization: str,
                                                 data: st.DataObject) -> None:
    flags = (len(fields) + 7) // 8 if serialization == "BINARY2" else 0
    row = st.tuples(st.binary(min_size=flags, max_size=flags),
                    *(binary_cell(k) for k in fields)).map(b"".join)
    raw = b"".join(data.draw(st.lists(row, max_size=4)))
    raw += data.draw(st.binary(max_size=3))  # sometimes a broken last row
    declared = "".join(_field(k, i) for i, k in enumerate(fields))
    _check(query_connection, binary(declared, raw, serialization))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.binary(max_size=400))
def test_any_bytes_are_refused_with_a_value_error(document: bytes) -> None:
    assume(b"<VOTABLE" not in document)
    with pytest.raises(ValueError):
        parse_votable(document)
