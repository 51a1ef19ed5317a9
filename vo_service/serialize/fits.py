"""FITS binary table output (one BINTABLE extension after an empty primary HDU).

A BINTABLE header must state the row count (NAXIS2), the row width (fixed string
widths) and the heap size (PCOUNT) before the first data byte, and none of these is
known until the last row has been read.  So the result is spooled first: each batch
is converted to column arrays and pickled to a temporary file (memory stays at one
batch), while the maxima are tracked; then the header is written and the spool is
replayed into fixed-width records, with variable-length arrays (polygons) in the
heap through 'P' descriptors (the heap goes to a second spool and follows the rows).
Because nothing is yielded before the spool is complete, a failing query raises
before the first byte, and the caller can still send a DALI error document.

NULLs: integer columns declare TNULLn (the type's minimum), floats are NaN, booleans
are the 0 byte, strings are empty (FITS cannot tell an empty string from NULL).
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from vo_service.serialize import columns as col
from vo_service.serialize.columns import ColumnPlan

BLOCK = 2880
_TFORM = {col.SHORT: "I", col.INT: "J", col.LONG: "K", col.FLOAT: "E", col.DOUBLE: "D"}
_SPOOL_MEMORY = 8 * 1024 * 1024


@dataclass
class _Shape:
    """What pass 1 learns about a column: the widest string or the longest array."""

    max_len: int = 0
    has_null: bool = False


@dataclass
class _Spool:
    shapes: list[_Shape] = field(default_factory=list)
    rows: int = 0
    heap: int = 0


def _card(key: str, value: str | int | bool | None = None, comment: str = "") -> bytes:
    if value is None:
        text = f"{key:<8}{comment}"
    else:
        if isinstance(value, bool):
            rendered = f"{'T' if value else 'F':>20}"
        elif isinstance(value, int):
            rendered = f"{value:>20}"
        else:
            clean = value.encode("ascii", "replace").decode()[:68].replace("'", "''")
            rendered = f"'{clean:<8}'"
            rendered = rendered if len(rendered) >= 20 else f"{rendered:<20}"
        text = f"{key:<8}= {rendered}"
        if comment:
            text += f" / {comment}"
    raw = text.encode("ascii", "replace")[:80]
    return raw + b" " * (80 - len(raw))


def _pad(data: bytes, fill: bytes = b" ") -> bytes:
    extra = -len(data) % BLOCK
    return data + fill * extra


def _convert(plan: ColumnPlan, values: Sequence[Any]) -> tuple[Any, ...]:
    """One batch of one column in the form pass 2 needs (big-endian, FITS nulls)."""
    kind = plan.kind
    if kind in col.SCALAR_DTYPES:
        array, mask = col.numbers(values, kind)
        return ("num", array, mask is not None)
    if kind == col.BOOL:
        raw = col.booleans(values)
        raw[raw == ord("?")] = 0
        return ("num", raw, False)
    if kind in (col.CHAR, col.UNICODE, col.TIMESTAMP):
        cells, _ = col.texts(values, kind)
        counts, lengths, data = col.encoded_strings(cells, col.CHAR)
        return ("str", lengths, data)
    if kind == col.GEOMETRY:
        counts, flat = col.geometry(values, plan)
    else:
        counts, flat = col.generic_arrays(values, plan)
    return ("arr", counts, flat.astype(plan.element_dtype or ">f8"))


def _spool(plans: Sequence[ColumnPlan], batches: Iterator[Sequence[Sequence[Any]]],
           out: IO[bytes]) -> _Spool:
    spool = _Spool(shapes=[_Shape() for _ in plans])
    for columns in batches:
        converted = [_convert(p, c) for p, c in zip(plans, columns, strict=True)]
        for shape, item in zip(spool.shapes, converted, strict=True):
            if item[0] in ("str", "arr") and item[1].size:
                shape.max_len = max(shape.max_len, int(item[1].max()))
                if item[0] == "arr":
                    spool.heap += int(item[1].sum()) * item[2].itemsize
            elif item[0] == "num" and item[2]:
                shape.has_null = True
        spool.rows += len(columns[0])
        pickle.dump(converted, out, protocol=pickle.HIGHEST_PROTOCOL)
    return spool


def _layout(plans: Sequence[ColumnPlan], shapes: Sequence[_Shape]
            ) -> list[tuple[str, int]]:
    """(TFORM, byte width) per column."""
    out: list[tuple[str, int]] = []
    for plan, shape in zip(plans, shapes, strict=True):
        if plan.kind in _TFORM:
            out.append((f"1{_TFORM[plan.kind]}", np.dtype(col.SCALAR_DTYPES[plan.kind]).itemsize))
        elif plan.kind == col.BOOL:
            out.append(("1L", 1))
        elif plan.kind in (col.CHAR, col.UNICODE, col.TIMESTAMP):
            width = max(1, shape.max_len)
            out.append((f"{width}A", width))
        else:
            code = "E" if plan.element_dtype == ">f4" else (
                _TFORM.get({">i2": col.SHORT, ">i4": col.INT, ">i8": col.LONG}.get(
                    plan.element_dtype or "", ""), "D"))
            out.append((f"1P{code}({shape.max_len})", 8))
    return out


def header(plans: Sequence[ColumnPlan], spool: _Spool, layout: Sequence[tuple[str, int]],
           heap_size: int, overflow: bool, query: str | None) -> bytes:
    primary = [_card("SIMPLE", True, "conforms to FITS standard"), _card("BITPIX", 8),
               _card("NAXIS", 0), _card("EXTEND", True), _card("END")]
    cards = [
        _card("XTENSION", "BINTABLE", "binary table extension"), _card("BITPIX", 8),
        _card("NAXIS", 2), _card("NAXIS1", sum(w for _, w in layout), "bytes per row"),
        _card("NAXIS2", spool.rows, "number of rows"), _card("PCOUNT", heap_size, "heap size"),
        _card("GCOUNT", 1), _card("TFIELDS", len(plans)),
    ]
    for i, (plan, _shape, (tform, _)) in enumerate(
            zip(plans, spool.shapes, layout, strict=True), start=1):
        c = plan.column
        cards.append(_card(f"TTYPE{i}", c.name))
        cards.append(_card(f"TFORM{i}", tform))
        if c.unit:
            cards.append(_card(f"TUNIT{i}", c.unit))
        if plan.kind in col.INT_NULLS:
            cards.append(_card(f"TNULL{i}", col.INT_NULLS[plan.kind]))
    cards.append(_card("EXTNAME", "RESULTS"))
    if overflow:
        cards.append(_card("COMMENT", None,
                           "QUERY_STATUS OVERFLOW: the result was truncated at MAXREC rows"))
    if query:
        text = " ".join(query.split())
        for start in range(0, min(len(text), 70 * 20), 70):
            cards.append(_card("COMMENT", None, ("QUERY: " if start == 0 else "  ")
                               + text[start:start + 70]))
    cards.append(_card("END"))
    return _pad(b"".join(primary)) + _pad(b"".join(cards))


def _records(layout: Sequence[tuple[str, int]], converted: Sequence[tuple[Any, ...]],
             n: int, heap: IO[bytes], heap_offset: int) -> tuple[bytes, int]:
    width = sum(w for _, w in layout)
    matrix = np.zeros((n, width), dtype=np.uint8)
    pos = 0
    for (_tform, w), item in zip(layout, converted, strict=True):
        kind = item[0]
        if kind == "num":
            array = item[1]
            matrix[:, pos:pos + w] = array.view(np.uint8).reshape(n, w)
        elif kind == "str":
            lengths, data = item[1], item[2]
            valid = np.arange(w) < lengths[:, None]
            block = np.zeros((n, w), dtype=np.uint8)
            block[valid] = np.frombuffer(data, np.uint8)
            matrix[:, pos:pos + w] = block
        else:
            counts, flat = item[1], item[2]
            nbytes = counts * flat.itemsize
            offsets = heap_offset + np.concatenate(([0], np.cumsum(nbytes)[:-1])) \
                if n else np.zeros(0, np.int64)
            descriptor = np.empty((n, 2), dtype=">i4")
            descriptor[:, 0] = counts
            descriptor[:, 1] = offsets
            matrix[:, pos:pos + w] = descriptor.view(np.uint8).reshape(n, 8)
            raw = flat.tobytes()
            heap.write(raw)
            heap_offset += len(raw)
        pos += w
    return matrix.tobytes(), heap_offset


def write_fits(plans: Sequence[ColumnPlan], batches: Iterator[Sequence[Sequence[Any]]], *,
               overflow: Any, query: str | None) -> Iterator[bytes]:
    """Spool ``batches`` (already limited and transposed), then yield the FITS file.

    ``overflow`` is a callable evaluated after the spool (the limiter knows only then).
    """
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY) as spool_file, \
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY) as heap:
        spool = _spool(plans, batches, spool_file)
        layout = _layout(plans, spool.shapes)
        spool_file.seek(0)
        main_size = spool.rows * sum(w for _, w in layout)
        heap_size = spool.heap
        yield header(plans, spool, layout, heap_size, bool(overflow()), query)
        offset = 0
        remaining = spool.rows
        while remaining:
            converted = pickle.load(spool_file)
            n = len(converted[0][1]) if converted else 0
            records, offset = _records(layout, converted, n, heap, offset)
            remaining -= n
            yield records
        heap.seek(0)
        while chunk := heap.read(1 << 20):
            yield chunk
        yield b"\0" * (-(main_size + heap_size) % BLOCK)
