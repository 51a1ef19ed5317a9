"""Property: any table of the translator's result types survives every writer.

Hypothesis draws tables of every column kind the ADQL translator can produce (numbers,
booleans, strings, timestamps, numeric arrays, computed POINT/CIRCLE/POLYGON/CENTROID,
adql:REGION text) with NULLs and extreme values, writes them in every format through
the real writers — and, against the test PostgreSQL, from rows a real cursor fetched
and through the COPY path — and reads them back with independent readers (astropy for
VOTable, CSV and FITS; the csv module as the strict RFC 4180 reader of CSV and TSV).

What each format can say is not the same, and the expectations below say where they
differ (see docs/tap.md): VOTable reports NaN as NULL; BINARY and FITS mark an integer
NULL with the type's minimum, so that value reads as NULL there; char is ASCII in
binary formats (other characters become '?'), unicodeChar UCS-2; TSV turns TAB and line
breaks into spaces; FITS strings drop trailing blanks and cannot tell '' from NULL, nor
a boolean NULL from false.  Geometry is drawn in degrees with at most 7 decimals and
must come back exactly (the 1e-10 degree rounding).
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg2
import psycopg2.extras
from astropy.io import ascii as astropy_ascii
from astropy.io import fits
from astropy.io.votable import parse
from astropy.table import Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg2 import sql

from vo_service.result import ResultColumn
from vo_service.serialize.formats import resolve_format
from vo_service.serialize.results import ResultInfo, register_text_timestamps, stream_result
from vo_service.serialize.stcs import to_stcs
from vo_service.services.copy_results import CopyStream, csv_row_sql, row_sql

FORMATS = ["votable/b2", "votable/b", "votable/td", "csv", "tsv", "fits"]
SERIALIZATION = {"votable/b2": "BINARY2", "votable/b": "BINARY", "votable/td": "TABLEDATA"}
INT_MIN = {"short": -(2**15), "int": -(2**31), "long": -(2**63)}
INT_MAX = {"short": 2**15 - 1, "int": 2**31 - 1, "long": 2**63 - 1}
_XML_BAD = {chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE,
                             0xFFFF]}


# ---------------------------------------------------------------- the column kinds


@dataclass(frozen=True)
class Kind:
    """A result column kind: its FIELD, the values psycopg2 hands over, its SQL type."""

    name: str
    column: ResultColumn
    values: st.SearchStrategy[Any]
    pg_type: str | None  # None: not put through the database (built in Python only)


def _ints(kind: str) -> st.SearchStrategy[int]:
    low, high = INT_MIN[kind], INT_MAX[kind]
    return st.one_of(st.integers(low, high), st.sampled_from([low, low + 1, high, 0, -1]))


# What PostgreSQL text can hold: anything but NUL (and surrogates, which UTF-8 cannot).
characters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
very_long = st.builds(lambda c, n: c * n, characters, st.integers(1000, 20000))
texts = st.one_of(st.text(alphabet=characters, max_size=40),
                  st.sampled_from(["", " ", "a,b", 'say "hi"', "tab\there", "cr\rlf\r\n",
                                   "<&>", "é", "\U0001f52d", "\ufffe", "\x01", "NaN", "T"]),
                  very_long)
datetimes = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23,
                                                                           59, 59, 999999))
# Degrees with at most 7 decimals: they must come back exactly.
longitudes = st.integers(0, 3600000000 - 1).map(lambda k: k / 1e7)
latitudes = st.one_of(st.integers(-900000000, 900000000).map(lambda k: k / 1e7),
                      st.sampled_from([-90.0, 90.0, 0.0]))


def _pg_number(value: float) -> str:
    """A number as pgSphere prints it: 15 significant digits of radians."""
    text = f"{math.radians(value):.15g}"
    return "0" if text in ("0", "-0") else text


def point_text(lon: float, lat: float) -> str:
    return f"({_pg_number(lon)} , {_pg_number(lat)})"


points = st.tuples(longitudes, latitudes)
circles = st.tuples(longitudes, latitudes, st.integers(0, 900000000).map(lambda k: k / 1e7))


@st.composite
def polygons(draw: st.DrawFn) -> list[tuple[float, float]]:
    """A small convex polygon pgSphere takes, vertices rounded to 1e-7 degree."""
    n = draw(st.integers(3, 10))
    lon, lat = draw(longitudes), draw(st.integers(-600, 600).map(lambda k: k / 10))
    radius = draw(st.integers(10, 50000).map(lambda k: k / 1e4))
    out = []
    for k in range(n):
        angle = 2 * math.pi * k / n
        vlon = (lon + radius * math.cos(angle) / math.cos(math.radians(lat))) % 360.0
        out.append((round(vlon, 7) % 360.0, round(lat + radius * math.sin(angle), 7)))
    return out


def _geometry(kind: str, value: Any) -> str:
    if kind == "point":
        return point_text(*value)
    if kind == "circle":
        return f"<{point_text(value[0], value[1])} , {_pg_number(value[2])}>"
    return "{" + ",".join(point_text(*v) for v in value) + "}"


def _array(element: st.SearchStrategy[Any], size: int | None) -> st.SearchStrategy[Any]:
    with_nulls = st.one_of(element, st.none())
    if size is None:
        return st.lists(with_nulls, max_size=8)
    return st.lists(with_nulls, min_size=size, max_size=size)


def _kinds() -> list[Kind]:
    double = st.floats(allow_nan=True, allow_infinity=True)
    single = st.floats(width=32, allow_nan=True, allow_infinity=True)
    return [
        Kind("short", ResultColumn("s", "short"), _ints("short"), "smallint"),
        Kind("int", ResultColumn("i", "int"), _ints("int"), "integer"),
        Kind("long", ResultColumn("l", "long"), _ints("long"), "bigint"),
        Kind("float", ResultColumn("f", "float"), single, "real"),
        Kind("double", ResultColumn("d", "double"), double, "double precision"),
        Kind("boolean", ResultColumn("b", "boolean"), st.booleans(), "boolean"),
        Kind("char", ResultColumn("t", "char", "*"), texts, "text"),
        Kind("char5", ResultColumn("t5", "char", "5"),  # CAST(x AS CHAR(5)): rpad
             st.text(alphabet=characters, max_size=5).map(lambda t: t.ljust(5)), None),
        Kind("unicode", ResultColumn("u", "unicodeChar", "*"), texts, "text"),
        Kind("timestamp", ResultColumn("ts", "char", "*", "timestamp"), datetimes,
             "timestamp"),
        Kind("date", ResultColumn("night", "char", "*", "timestamp"), st.dates(), "date"),
        Kind("ints", ResultColumn("ia", "int", "*"), _array(_ints("int"), None), "integer[]"),
        Kind("doubles", ResultColumn("da", "double", "*"), _array(double, None),
             "double precision[]"),
        Kind("shorts3", ResultColumn("sa", "short", "3"), _array(_ints("short"), 3), None),
        # Computed geometry, declared as the translator declares it (arraysize "*").
        Kind("point", ResultColumn("p", "double", "*", "point"), points, "spoint"),
        Kind("centroid", ResultColumn("centroid", "double", "*", "point"), points, "spoint"),
        Kind("circle", ResultColumn("c", "double", "*", "circle"), circles, "scircle"),
        Kind("polygon", ResultColumn("poly", "double", "*", "polygon"), polygons(), "spoly"),
        Kind("region", ResultColumn("s_region", "char", "*", "adql:REGION"), polygons(), None),
    ]


KINDS = {k.name: k for k in _kinds()}
SCALARS = {"short", "int", "long", "float", "double", "boolean", "char", "unicode",
           "timestamp", "date"}


def psycopg2_value(kind: str, value: Any) -> Any:
    """The value as the executor hands it to the writers (pgSphere text, PostgreSQL's
    timestamp text, STC-S for adql:REGION)."""
    if value is None:
        return None
    if kind in ("point", "centroid", "circle", "polygon"):
        return _geometry("polygon" if kind == "polygon" else
                         "circle" if kind == "circle" else "point", value)
    if kind == "region":
        return to_stcs(_geometry("polygon", value))
    if kind == "timestamp":
        return str(value)  # PostgreSQL's text: '2020-01-02 03:04:05.5'
    if kind == "date":
        return value.isoformat()
    return value


@st.composite
def tables(draw: st.DrawFn, choices: Sequence[str] = tuple(sorted(KINDS))
           ) -> tuple[list[Kind], list[tuple[Any, ...]]]:
    chosen = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=6))
    kinds = [KINDS[n] for n in chosen]
    row = st.tuples(*(st.one_of(st.none(), k.values) for k in kinds))
    return kinds, draw(st.lists(row, max_size=12))


def columns_of(kinds: Sequence[Kind]) -> list[ResultColumn]:
    """Unique FIELD names, as the translator makes them."""
    out = []
    for i, kind in enumerate(kinds):
        c = kind.column
        out.append(ResultColumn(f"{c.name}_{i}", c.datatype, c.arraysize, c.xtype))
    return out


# ---------------------------------------------------------------- reading back


def read_back(fmt: str, out: bytes, width: int) -> list[list[Any]]:
    """Rows of cells as the independent reader gives them (None: NULL)."""
    if fmt in SERIALIZATION:
        array = parse(io.BytesIO(out)).get_first_table().array
        cells = []
        for r in range(len(array)):
            row = []
            for name in array.dtype.names:
                value = array[name][r]
                masked = np.ma.getmaskarray(array[name])[r]
                if np.all(masked) and np.size(masked) > 0:
                    value = None
                elif np.ndim(masked) > 0:  # a fixed-size array
                    value = np.ma.filled(np.ma.asarray(value, dtype=float), np.nan)
                row.append(value)
            cells.append(row)
        return cells
    if fmt == "fits":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # boolean NULLs read as False, with a warning
            with fits.open(io.BytesIO(out)) as hdus:
                hdus.verify("exception")
                data = hdus[1].data
                return [[data.field(c)[r] for c in range(width)] for r in range(len(data))]
    text = out.decode()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="," if fmt == "csv" else "\t",
                        quoting=csv.QUOTE_MINIMAL if fmt == "csv" else csv.QUOTE_NONE)
    # A one-column row holding NULL is an empty line (as PostgreSQL's COPY writes it).
    rows = [r or [""] for r in reader] if width == 1 else list(reader)
    assert all(len(r) == width for r in rows), "every line has every cell"
    return [[None if c == "" else c for c in r] for r in rows[1:]]


def astropy_csv(out: bytes) -> Table:
    return Table.read(out.decode(), format="csv",
                      converters={"*": [astropy_ascii.convert_numpy(str)]})


# ---------------------------------------------------------------- expectations


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode()


def _xml(text: str) -> str:
    return "".join("\ufffd" if c in _XML_BAD else c for c in text)


def expected_text(kind: str, value: str, fmt: str) -> str:
    if fmt == "votable/td":
        return _xml(value)
    if fmt in ("votable/b", "votable/b2"):
        if kind == "unicode":
            return "".join("\ufffd" if c > "\uffff" else c for c in value)
        return _ascii(value)
    if fmt == "fits":
        return _ascii(value).rstrip()
    if fmt == "tsv":
        return value.replace("\r\n", " ").replace("\t", " ").replace("\n", " ").replace(
            "\r", " ")
    return value


def _as_float(got: Any) -> float:
    if isinstance(got, str):
        return {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}.get(got) or float(got)
    return float(got)


def _numbers(got: Any) -> list[float]:
    if isinstance(got, str):
        return [_as_float(x) for x in got.split()]
    return [float(x) for x in np.ma.filled(np.asarray(got, dtype=float), np.nan)]


def _same_float(a: float, b: float, single: bool) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return bool(np.float32(a) == np.float32(b)) if single else a == b


def check_cell(kind: str, value: Any, got: Any, fmt: str, where: str) -> None:
    """``got`` (read back) holds ``value`` (written), by the rules of ``fmt``."""
    text_format = fmt in ("csv", "tsv")
    if kind in INT_MIN:
        nulls = value is None or (value == INT_MIN[kind] and fmt in ("votable/b", "fits"))
        if fmt == "fits" and got == INT_MIN[kind]:
            got = None
        assert (got is None) if nulls else int(got) == value, where
    elif kind in ("float", "double"):
        single = kind == "float"
        null = value is None or (math.isnan(value) and fmt in SERIALIZATION)
        if null:
            assert got is None or (fmt == "fits" and math.isnan(got)), where
        else:
            assert got is not None and _same_float(_as_float(got), value, single), where
    elif kind == "boolean":
        if text_format:
            assert got == (None if value is None else "true" if value else "false"), where
        elif fmt == "fits":
            assert bool(got) == bool(value), where
        else:
            assert (got is None) if value is None else bool(got) == value, where
    elif kind in ("char", "unicode", "char5", "region"):
        if value is None:
            want = ""
        elif kind == "region":  # STC-S of the rounded degrees, fixed-point
            want = "POLYGON ICRS " + " ".join(
                f"{x:.10f}".rstrip("0").rstrip(".")
                for x in expected_degrees("polygon", value))
        else:
            want = expected_text(kind, value, fmt)
        have = "" if got is None else str(got)
        if fmt == "votable/td":  # astropy strips XML white space around a TD's text
            want = want.strip(" \t\r\n")
        assert have == want, f"{where}: {have!r} != {want!r}"
    elif kind in ("timestamp", "date"):
        if value is None:
            assert got in (None, ""), where
        else:
            parsed = datetime.fromisoformat(str(got))
            want = value if isinstance(value, datetime) else datetime.combine(
                value, datetime.min.time())
            assert parsed == want, where
    else:
        check_array(kind, value, got, fmt, where)


def check_array(kind: str, value: Any, got: Any, fmt: str, where: str) -> None:
    numbers = [] if got is None else _numbers(got)
    if value is None and kind == "shorts3" and fmt == "votable/b":
        assert numbers == [INT_MIN["short"]] * 3, where  # no NULL flags: magic values
        return
    if value is None or (value == [] and fmt not in ("votable/b", "votable/b2")):
        assert numbers == [] or all(math.isnan(x) for x in numbers), where
        return
    if kind in ("ints", "shorts3", "doubles"):
        element_null = INT_MIN["int" if kind == "ints" else "short"] if kind != "doubles" \
            else math.nan
        want = [element_null if v is None else v for v in value]
        assert len(numbers) == len(want), where
        for a, b in zip(numbers, want, strict=True):
            assert _same_float(a, float(b), False), f"{where}: {numbers} != {want}"
        return
    want = expected_degrees(kind, value)
    assert len(numbers) == len(want), f"{where}: {numbers} != {want}"
    for i, (a, b) in enumerate(zip(numbers, want, strict=True)):
        pole = kind in ("polygon", "point", "centroid", "circle") and i % 2 == 0 and \
            i + 1 < len(want) and abs(want[i + 1]) == 90.0
        assert pole or a == b, f"{where}: {numbers} != {want}"


def expected_degrees(kind: str, value: Any) -> list[float]:
    flat = [x for vertex in value for x in vertex] if kind == "polygon" else list(value)
    return [0.0 if x == 360.0 else x + 0.0 for x in flat]


def check_table(fmt: str, out: bytes, kinds: Sequence[Kind],
                rows: Sequence[tuple[Any, ...]]) -> None:
    got = read_back(fmt, out, len(kinds))
    assert len(got) == len(rows), f"{fmt}: {len(got)} rows read, {len(rows)} written"
    for r, (row, cells) in enumerate(zip(rows, got, strict=True)):
        for c, (kind, value, cell) in enumerate(zip(kinds, row, cells, strict=True)):
            check_cell(kind.name, value, cell, fmt, f"{fmt} row {r} column {c} ({kind.name})")
    if fmt == "csv" and rows and not _astropy_cannot(rows):
        check_astropy_csv(out, len(kinds))


_LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _astropy_cannot(rows: Sequence[tuple[Any, ...]]) -> bool:
    """Text astropy's CSV reader does not read back as RFC 4180 says: it strips blanks
    around a cell, skips a line of blanks, turns CR into LF, and splits lines as
    str.splitlines does (VT, FF, NEL, U+2028... end a line there)."""
    return any(isinstance(v, str) and (v != v.strip() or any(b in v for b in _LINE_BREAKS)
                                       or "\r" in v or "\n" in v)
               for row in rows for v in row)


def check_astropy_csv(out: bytes, width: int) -> None:
    """astropy reads the CSV cell for cell as the strict reader does."""
    strict = read_back("csv", out, width)
    expected = [["" if c is None else c for c in row] for row in strict]
    table = astropy_csv(out)
    got = [["" if np.ma.is_masked(v) else str(v) for v in row] for row in table]
    assert got == expected, "astropy reads the CSV"


def write(fmt: str, columns: Sequence[ResultColumn], batches: Iterator[Any]) -> bytes:
    info = ResultInfo(query="SELECT property")
    return b"".join(stream_result(resolve_format(fmt), columns, batches, maxrec=None,
                                  info=info))


def _batched(rows: Sequence[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    for start in range(0, len(rows), size):
        yield list(rows[start:start + size])


# ROUNDTRIP_EXAMPLES=1000 searches harder (a few minutes); the suite keeps it quick.
PROPERTY = settings(max_examples=int(os.environ.get("ROUNDTRIP_EXAMPLES", "40")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@PROPERTY
@given(table=tables(), batch=st.integers(1, 5))
def test_every_format_reads_back(table: tuple[list[Kind], list[tuple[Any, ...]]],
                                 batch: int) -> None:
    kinds, rows = table
    columns = columns_of(kinds)
    given_rows = [tuple(psycopg2_value(k.name, v) for k, v in zip(kinds, row, strict=True))
                  for row in rows]
    for fmt in FORMATS:
        out = write(fmt, columns, _batched(given_rows, batch))
        check_table(fmt, out, kinds, rows)


# ---------------------------------------------------------------- through PostgreSQL


def _insertable(value: Any, kind: Kind) -> Any:
    """The Python value for the INSERT (pgSphere input text for geometry)."""
    if value is None or kind.pg_type is None:
        return value
    if kind.pg_type in ("spoint", "scircle", "spoly"):
        return psycopg2_value(kind.name, value)
    return value


def _through_postgres(conn: Any, kinds: Sequence[Kind], rows: Sequence[tuple[Any, ...]],
                      use: Callable[[Any], None]) -> None:
    """Put the rows in a temporary table c1..cN and call ``use(cursor)``; roll back."""
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ WRITE")
            columns = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(f"c{i + 1}"), sql.SQL(k.pg_type or ""))
                for i, k in enumerate(kinds))
            cur.execute(sql.SQL("CREATE TEMP TABLE roundtrip ({}) ON COMMIT DROP").format(
                columns))
            if rows:
                psycopg2.extras.execute_values(
                    cur, "INSERT INTO roundtrip VALUES %s",
                    [tuple(_insertable(v, k) for k, v in zip(kinds, row, strict=True))
                     for row in rows])
        use(conn)
    finally:
        conn.rollback()


DATABASE_KINDS = sorted(n for n, k in KINDS.items() if k.pg_type is not None)


@PROPERTY
@given(table=tables(DATABASE_KINDS))
def test_rows_from_postgres_and_copy_read_back(query_connection: Any,
                                               table: tuple[list[Kind], list[tuple[Any, ...]]]
                                               ) -> None:
    kinds, rows = table
    columns = columns_of(kinds)
    inner = "SELECT * FROM roundtrip ORDER BY ctid"

    def use(conn: Any) -> None:
        with conn.cursor(name="roundtrip_cursor") as cur:
            register_text_timestamps(cur)
            cur.execute(inner)
            fetched = cur.fetchall()
        for fmt in FORMATS:
            check_table(fmt, write(fmt, columns, iter([fetched])), kinds, rows)
        for fmt, build, scalars in (("votable/b2", row_sql, SCALARS - {"unicode"}),
                                    ("csv", csv_row_sql, SCALARS)):
            copy_sql = build(columns, inner)
            # COPY takes every table of scalars (BINARY2: of char, not unicodeChar).
            assert (copy_sql is None) == any(k.name not in scalars for k in kinds)
            if copy_sql is None:
                continue
            copy = CopyStream(conn, copy_sql, columns, 10_000, csv=fmt == "csv")
            copy.start()
            info = ResultInfo()
            out = b"".join(copy.votable(info) if fmt != "csv" else copy.csv(info))
            check_table(fmt, out, kinds, rows)

    _through_postgres(query_connection, kinds, rows, use)
