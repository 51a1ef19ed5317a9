"""Column-at-a-time conversion of fetched rows into cells, shared by every writer.

The writers never loop over cells in Python where numpy or a C-level ``map`` /
``str.join`` can do the work: a batch of rows is transposed once (``zip(*rows)``),
and each column is converted as a whole — numbers into big-endian numpy arrays,
strings into one joined buffer plus a length array, pgSphere geometry text into one
float array parsed in a single call.  Per-value Python code runs only on rare
paths (NULLs in integer columns, non-ASCII text, NaN in text output).

pgSphere writes geometry in radians by default (``set_sphere_output('RAD')``, with
15 significant digits): spoint ``(lon , lat)``, scircle ``<(lon , lat) , r>``,
spoly ``{(lon , lat),(lon , lat),...}``, sbox ``((lon , lat), (lon , lat))``.  DALI
wants double arrays in degrees (point: ra dec; circle: ra dec radius; polygon:
ra1 dec1 ...); an sbox becomes its four-corner polygon.  The degrees are rounded to
:data:`GEOMETRY_DECIMALS` places (see :func:`round_degrees`), in every format.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from vo_service.result import ResultColumn
from vo_service.xml_text import XML_ILLEGAL

GEOMETRY_XTYPES = ("point", "circle", "polygon")

# Cell kinds the writers know.
BOOL, SHORT, INT, LONG, FLOAT, DOUBLE = "boolean", "short", "int", "long", "float", "double"
CHAR, UNICODE, TIMESTAMP, GEOMETRY, ARRAY = "char", "unicodeChar", "timestamp", "geometry", "array"

SCALAR_DTYPES: dict[str, str] = {
    SHORT: ">i2", INT: ">i4", LONG: ">i8", FLOAT: ">f4", DOUBLE: ">f8",
}
INT_NULLS: dict[str, int] = {SHORT: -(2**15), INT: -(2**31), LONG: -(2**63)}

GEOMETRY_DECIMALS = 10
"""Geometry values are given to 1e-10 degree (0.36 micro-arcsecond).

What pgSphere prints carries 15 significant digits of radians, a relative error of
up to 5e-15: at most 2e-12 degree for any angle up to 360, 25 times less than half
the 1e-10 step.  So a value known to 10 decimals (a literal ``POINT('ICRS', 1, 2)``,
an RA stored in degrees) comes back exactly instead of as 1.0000000000000002, and
the step is still thirty times finer than the best astrometry (Gaia, ~10 micro-arcsec).
docs/tap.md states it for users.
"""

_GEOMETRY_PUNCTUATION = str.maketrans("{}()<>,", "       ")
_XML_NEEDS = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class ColumnPlan:
    """How one result column is written: its cell kind and its VOTable metadata."""

    column: ResultColumn
    kind: str
    element_dtype: str | None
    """Big-endian numpy dtype of one array element (numbers and geometry)."""
    fixed_count: int | None
    """Element count for fixed-size arrays (point 2, circle 3, char(n)); None: variable."""

    @property
    def arraysize(self) -> str | None:
        """The FIELD's arraysize, derived from how the cells are encoded.

        A binary reader takes the layout of a cell from the FIELD alone: a fixed size
        means no element count, a variable one a 4-byte count first.  Deriving the
        declaration from ``fixed_count`` (and never copying the column's) is what keeps
        the two in step: the translator declares POINT and CIRCLE with ``*`` while
        DALI fixes them at 2 and 3 doubles, and a timestamp declared with a fixed width
        is still written as a variable-length string.  A variable size keeps a declared
        maximum (``10*``).
        """
        if self.kind == BOOL or self.kind in SCALAR_DTYPES:
            return None
        if self.fixed_count is not None:
            return str(self.fixed_count)
        declared = self.column.arraysize
        return declared if declared is not None and declared.endswith("*") else "*"


def plan_column(column: ResultColumn) -> ColumnPlan:
    """Decide the cell kind from datatype/arraysize/xtype (raises ValueError if unknown)."""
    datatype, arraysize, xtype = column.datatype, column.arraysize, column.xtype
    fixed = _fixed_size(arraysize)
    if xtype in GEOMETRY_XTYPES and datatype in (DOUBLE, FLOAT):
        count = {"point": 2, "circle": 3}.get(xtype)
        return ColumnPlan(column, GEOMETRY, SCALAR_DTYPES[datatype], count)
    if datatype in (CHAR, UNICODE):
        kind = TIMESTAMP if xtype == "timestamp" else datatype
        if kind == TIMESTAMP:
            return ColumnPlan(column, TIMESTAMP, None, None)
        return ColumnPlan(column, kind, None, fixed)
    if datatype == BOOL:
        if arraysize not in (None, "1"):
            raise ValueError(f"column {column.name}: boolean arrays are not supported")
        return ColumnPlan(column, BOOL, None, None)
    if datatype in SCALAR_DTYPES:
        if arraysize in (None, "1"):
            return ColumnPlan(column, datatype, SCALAR_DTYPES[datatype], None)
        return ColumnPlan(column, ARRAY, SCALAR_DTYPES[datatype], fixed)
    raise ValueError(f"column {column.name}: VOTable datatype {datatype!r} cannot be written")


def _fixed_size(arraysize: str | None) -> int | None:
    if arraysize is None or arraysize.endswith("*"):
        return None
    if "x" in arraysize:
        raise ValueError(f"multi-dimensional arraysize {arraysize!r} is not supported")
    return int(arraysize)


# ---------------------------------------------------------------- null masks


def null_mask(values: Sequence[Any]) -> npt.NDArray[np.bool_] | None:
    """A boolean mask of the None cells, or None when the column has none."""
    if values.count(None) == 0:
        return None
    objects = np.fromiter(values, dtype=object, count=len(values))
    return np.equal(objects, None)  # type: ignore[call-overload]  # elementwise "is None"


# ---------------------------------------------------------------- numbers


def numbers(values: Sequence[Any], kind: str
            ) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None]:
    """(big-endian array, NULL mask or None) of a scalar numeric column.

    numpy converts the whole tuple in C; None becomes NaN for floats, which is how a
    NULL is found (a stored NaN is reported as NULL too — VOTable 1.4 sect. 6.5
    allows readers to treat both alike).  Integers fail on None and take the slow
    path; NULL cells become the type's minimum (the BINARY magic null).
    """
    dtype = SCALAR_DTYPES[kind]
    if kind in (FLOAT, DOUBLE):
        try:
            array = np.array(values, dtype=np.float64)
        except (TypeError, ValueError):
            array = np.array([math.nan if v is None else float(v) for v in values])
        mask = np.isnan(array)
        return array.astype(dtype), (mask if mask.any() else None)
    try:
        return np.array(values, dtype=np.int64).astype(dtype), None
    except (TypeError, ValueError):
        objects = np.fromiter(values, dtype=object, count=len(values))
        nulls = np.equal(objects, None)  # type: ignore[call-overload]
        objects[nulls] = INT_NULLS[kind]
        return objects.astype(np.int64).astype(dtype), (nulls if nulls.any() else None)


def booleans(values: Sequence[Any]) -> npt.NDArray[np.uint8]:
    """VOTable boolean bytes: T, F and ? for NULL."""
    return np.array([ord("?") if v is None else (ord("T") if v else ord("F")) for v in values],
                    dtype=np.uint8)


# ---------------------------------------------------------------- strings


def texts(values: Sequence[Any], kind: str) -> tuple[list[str], npt.NDArray[np.bool_] | None]:
    """(each cell as its DALI text form, NULL mask or None); NULL becomes ''."""
    if kind == TIMESTAMP:
        return timestamps(values)
    try:
        "".join(values)  # C speed check: every value is a str
        return list(values), None
    except TypeError:
        mask = null_mask(values)
        return ["" if v is None else str(v) for v in values], mask


def timestamps(values: Sequence[Any]) -> tuple[list[str], npt.NDArray[np.bool_] | None]:
    """DALI timestamps: ISO 8601 with a 'T' separator and no time zone."""
    sample = values[0] if values else None
    if type(sample) is datetime and sample.tzinfo is None:
        try:
            return list(map(datetime.isoformat, values)), None
        except TypeError:
            pass
    elif isinstance(sample, str):
        try:  # text straight from PostgreSQL ('2020-01-02 03:04:05')
            return "\x00".join(values).replace(" ", "T").split("\x00"), None
        except TypeError:
            pass
    out: list[str] = []
    for value in values:
        if value is None:
            out.append("")
        elif isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            out.append(value.isoformat())
        elif isinstance(value, date):
            out.append(value.isoformat())
        else:
            out.append(str(value).replace(" ", "T"))
    return out, null_mask(values)


def encoded_strings(cells: list[str], kind: str
                    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], bytes]:
    """(element counts, byte lengths, concatenated bytes) of a string column.

    char is 7-bit ASCII in VOTable binary: other characters become '?', which keeps
    one byte per character so the counts come from ``len`` without encoding twice.
    unicodeChar is UCS-2: characters outside the BMP become U+FFFD for the same reason.
    """
    counts = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    joined = "".join(cells)
    if kind == UNICODE:
        if joined and max(joined) > "\uffff":
            joined = "".join("\ufffd" if c > "\uffff" else c for c in joined)
        return counts, counts * 2, joined.encode("utf-16-be")
    return counts, counts, joined.encode("ascii", "replace")


# ---------------------------------------------------------------- geometry


def geometry(values: Sequence[Any], plan: ColumnPlan
             ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(element counts per row, all elements in degrees) of a pgSphere column.

    A column holds one pgSphere type, so the first value tells the shape for all;
    the whole column is parsed by one numpy conversion after the punctuation is
    turned into spaces, and polygon rows are told apart by counting '(' per value.
    """
    n = len(values)
    sample = next((v for v in values if v is not None), None)
    if sample is None:
        return np.zeros(n, dtype=np.int64), np.zeros(0, dtype=np.float64)
    if not isinstance(sample, str) or sample.lstrip().startswith("(("):
        return _geometry_slow(values)
    present: Sequence[str] = values if values.count(None) == 0 else \
        [v for v in values if v is not None]
    if sample.lstrip().startswith("<"):
        per_row = np.full(len(present), 3, dtype=np.int64)
    elif sample.lstrip().startswith("{"):
        per_row = 2 * np.fromiter(map(str.count, present, repeat("(")), dtype=np.int64,
                                  count=len(present))
    else:
        per_row = np.full(len(present), 2, dtype=np.int64)
    text = " ".join(present).translate(_GEOMETRY_PUNCTUATION)
    flat = np.array(text.split(), dtype=np.float64)
    if flat.size != int(per_row.sum()):
        raise ValueError(f"column {plan.column.name}: unparsable pgSphere value")
    if len(present) == n:
        counts = per_row
    else:
        counts = np.zeros(n, dtype=np.int64)
        counts[np.fromiter((v is not None for v in values), np.bool_, n)] = per_row
    return counts, round_degrees(flat)


def _geometry_slow(values: Sequence[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Per-value parsing: sbox values (as four-corner polygons) and pre-parsed sequences."""
    counts: list[int] = []
    flat: list[float] = []
    for value in values:
        if value is None:
            counts.append(0)
            continue
        if not isinstance(value, str):  # already a sequence of degrees
            nums = [math.radians(float(x)) for x in value]
        else:
            nums = [float(x) for x in value.translate(_GEOMETRY_PUNCTUATION).split()]
            if value.lstrip().startswith("(("):
                lon1, lat1, lon2, lat2 = nums
                nums = [lon1, lat1, lon2, lat1, lon2, lat2, lon1, lat2]
        counts.append(len(nums))
        flat.extend(nums)
    return np.array(counts, dtype=np.int64), round_degrees(np.array(flat, dtype=np.float64))


def round_degrees(radians: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """pgSphere angles in degrees, rounded to :data:`GEOMETRY_DECIMALS` places.

    Every element is an angle (a circle's radius too).  pgSphere keeps longitudes in
    [0, 2pi), but one just below 2pi rounds to 360, which is written as 0; no latitude
    or radius reaches 360, so the test needs no positions.  -0.0 becomes 0.0, so that
    the text is never "-0".  ``np.round`` divides the rounded integer by 1e10, which
    IEEE rounds correctly: the result is the double nearest the decimal value, the one
    a reader parsing that decimal gets too.
    """
    degrees = np.round(np.degrees(radians), GEOMETRY_DECIMALS).astype(np.float64, copy=False)
    degrees[degrees == 360.0] = 0.0
    degrees += 0.0
    return degrees


def degree_texts(degrees: npt.NDArray[np.float64]) -> list[str]:
    """Rounded geometry numbers as text: fixed-point, without trailing zeros ('1', not
    '1.0'; '0.00001', not '1e-05'), so ``POINT('ICRS', 1, 2)`` reads ``1 2`` in
    TABLEDATA, CSV and STC-S alike.

    ``repr`` of each float cost about 450 ns a number (measured), most of the time of
    writing ``s_region``; here the digits come from integer arithmetic on the whole
    array and a table of five-digit groups, laid out in a byte matrix whose mask keeps
    the characters that are written (no leading or trailing zeros), read back in one
    compress as the binary writer does: about 175 ns a number.  Every value is a
    multiple of 1e-10 (:func:`round_degrees`), so the ten decimals are exact.
    """
    if degrees.size == 0:
        return []
    plain = np.isfinite(degrees) & (np.abs(degrees) < 1e8)  # no angle is larger
    if not plain.all():  # not from pgSphere: written as any other double
        texts = degree_texts(np.where(plain, degrees, 0.0))
        return [t if ok else _SPECIAL_FLOATS.get(repr(x), repr(x))
                for t, ok, x in zip(texts, plain.tolist(), degrees.tolist(), strict=True)]
    n = degrees.size
    scaled = np.rint(np.abs(degrees) * 10.0**GEOMETRY_DECIMALS).astype(np.int64)
    whole, fraction = np.divmod(scaled, 10**GEOMETRY_DECIMALS)
    high, low = np.divmod(fraction, 10**5)
    width = len(str(int(whole.max())))  # digits before the point
    digits, trailing_zeros = _five_digits()
    total = width + GEOMETRY_DECIMALS
    matrix = np.empty((n, total + 3), dtype=np.uint8)
    valid = np.empty((n, total + 3), dtype=np.bool_)
    matrix[:, 0], valid[:, 0] = ord("-"), degrees < 0
    # The whole part without leading zeros ('0' keeps its one digit).
    powers = 10 ** np.arange(width - 1, -1, -1)
    matrix[:, 1:width + 1] = whole[:, None] // powers % 10 + ord("0")
    valid[:, 1:width + 1] = (whole[:, None] >= powers) | (powers == 1)
    # The fraction without trailing zeros, and the point only where it remains.
    last = np.where(low != 0, 9 - trailing_zeros[low],
                    np.where(high != 0, 4 - trailing_zeros[high], -1))
    matrix[:, width + 1], valid[:, width + 1] = ord("."), last >= 0
    matrix[:, width + 2:width + 7] = digits[high]
    matrix[:, width + 7:-1] = digits[low]
    valid[:, width + 2:-1] = np.arange(GEOMETRY_DECIMALS) <= last[:, None]
    matrix[:, -1], valid[:, -1] = ord(" "), True
    return matrix[valid].tobytes().decode("ascii").split()


@functools.cache
def _five_digits() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The five ASCII digits of every number below 100000 and how many of them are
    trailing zeros (600 kB, made on first use)."""
    numbers = np.arange(10**5)
    digits = numbers[:, None] // 10 ** np.arange(4, -1, -1) % 10
    trailing = np.zeros(10**5, dtype=np.int64)
    for k in range(1, 6):
        trailing += numbers % 10**k == 0
    return (digits + ord("0")).astype(np.uint8), trailing


def generic_arrays(values: Sequence[Any], plan: ColumnPlan
                   ) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """(counts, flat elements) of a numeric array column (PostgreSQL arrays arrive as lists)."""
    counts = np.fromiter((0 if v is None else len(v) for v in values), dtype=np.int64,
                         count=len(values))
    flat = [x for v in values if v is not None for x in v]
    dtype = plan.element_dtype or ">f8"
    null = element_null(dtype)
    return counts, np.array([null if x is None else x for x in flat], dtype=dtype)


def element_null(dtype: str) -> float:
    """What stands for a NULL array element, or every element of a NULL fixed-size
    array in BINARY (which has no NULL flags): NaN, or an integer type's minimum (the
    magic null of a scalar of that type)."""
    if dtype[1] == "i":
        return INT_NULLS[{">i2": SHORT, ">i4": INT, ">i8": LONG}[dtype]]
    return math.nan


# ---------------------------------------------------------------- text output


_SPECIAL_FLOATS = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}


def scalar_texts(values: Sequence[Any], kind: str, *, nan: str = "NaN",
                 true_false: tuple[str, str] = ("T", "F")) -> list[str]:
    """Text cells of a scalar number or boolean column from the Python values.

    ``str`` of a Python float is its shortest round-trip form, so REAL values keep the
    digits PostgreSQL sent (no float32 widening artefacts).  NULL becomes ''.
    """
    if kind == BOOL:
        t, f = true_false
        return ["" if v is None else (t if v else f) for v in values]
    cells = list(map(str, values))
    if kind in (FLOAT, DOUBLE):
        if "n" in "".join(cells):  # 'nan', 'inf' or 'None'; digits never contain n
            names = {**_SPECIAL_FLOATS, "nan": nan, "None": ""}
            cells = [names.get(c, c) for c in cells]
    elif values.count(None):
        cells = ["" if v is None else c for v, c in zip(values, cells, strict=True)]
    return cells


def format_arrays(counts: npt.NDArray[np.int64], flat: npt.NDArray[Any],
                  mask: npt.NDArray[np.bool_] | None, *, geometry: bool = False) -> list[str]:
    """Space-separated array cells (DALI point/circle/polygon, numeric arrays)."""
    if geometry:
        tokens = degree_texts(flat.astype(np.float64))
    elif flat.dtype.kind == "f":
        tokens = list(map(repr, flat.astype(np.float64).tolist()))
        if not np.isfinite(flat).all():  # VOTable spells them NaN, +Inf, -Inf
            tokens = [_SPECIAL_FLOATS.get(t, t) for t in tokens]
    else:
        tokens = list(map(str, flat.tolist()))
    out: list[str] = []
    pos = 0
    for count in counts.tolist():
        out.append(" ".join(tokens[pos:pos + count]))
        pos += count
    if mask is not None:
        for i in np.flatnonzero(mask):
            out[i] = ""
    return out


def xml_escape_column(cells: list[str]) -> list[str]:
    """Escape a whole column of cell texts for XML character data at once.

    The column is joined with NUL (which XML cannot carry, so it cannot be data),
    scanned once, escaped with ``str.replace`` and split again.  Characters XML 1.0
    forbids become U+FFFD; CR is written as a reference so it survives parsing.
    """
    joined = "\x00".join(cells)
    if _XML_NEEDS.search(joined) is None:
        return cells
    if joined.count("\x00") != len(cells) - 1:
        return [xml_escape(c) for c in cells]
    escaped = joined.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = escaped.replace("\r", "&#13;")
    parts = escaped.split("\x00")
    if XML_ILLEGAL.search(escaped.replace("\x00", "")):
        parts = [XML_ILLEGAL.sub("\ufffd", p) for p in parts]
    return parts


def xml_escape(text: str) -> str:
    """Escape one string for XML character data or a double-quoted attribute."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace('"', "&quot;").replace("\r", "&#13;")
    return XML_ILLEGAL.sub("\ufffd", text)
