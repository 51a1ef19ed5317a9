"""Streaming VOTable writers: TABLEDATA, BINARY and BINARY2.

The document skeleton (VOTABLE, RESOURCE, INFOs, FIELDs) is built with lxml and cut
at the data; rows are then appended batch by batch.  Binary rows are built a batch
at a time with numpy: every column becomes a block of an ``(n, width)`` byte matrix
(variable-length cells padded to the batch's longest value, with a mask of the
bytes that are real), and one boolean compress of the matrix yields the row-major
records.  Base64 is produced by ``pybase64`` (SIMD; ten times ``binascii``'s speed,
which made base64 the largest cost of a streamed BINARY2 row) over multiples of 57
bytes, reshaped into 76-character lines, carrying the remainder to the next batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pybase64
from lxml import etree

from vo_service.errors import VOTABLE_NS
from vo_service.serialize import columns as col
from vo_service.serialize.columns import ColumnPlan
from vo_service.xml_text import xml_text

VOTABLE_VERSION = "1.4"
_MARKER = "@@data-7f3a9c@@"
_LINE_BYTES = 57  # base64 of 57 bytes is one 76-character line


def element(parent: etree._Element | None, tag: str, **attributes: str) -> etree._Element:
    """A VOTable element: a new root (VOTable the default namespace) or a child."""
    qualified = f"{{{VOTABLE_NS}}}{tag}"
    if parent is None:
        return etree.Element(qualified, attributes, nsmap={None: VOTABLE_NS})
    return etree.SubElement(parent, qualified, attributes)


def safe_ids(names: Sequence[str]) -> list[str]:
    """Unique XML NCName IDs derived from column names (ID must be an xs:ID)."""
    ids: list[str] = []
    seen: set[str] = set()
    for name in names:
        base = "".join(c if c.isascii() and (c.isalnum() or c in "_-.") else "_" for c in name)
        if not base or not (base[0].isalpha() or base[0] == "_"):
            base = "_" + base
        candidate, n = base, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{base}_{n}"
        seen.add(candidate.lower())
        ids.append(candidate)
    return ids


def _info(parent: etree._Element, name: str, value: str, text: str | None = None) -> None:
    element = etree.SubElement(parent, f"{{{VOTABLE_NS}}}INFO", name=name,
                               value=xml_text(value))
    if text:
        element.text = xml_text(text)


def document_parts(plans: Sequence[ColumnPlan], serialization: str,
                   infos: Sequence[tuple[str, str]]) -> tuple[bytes, bytes]:
    """(everything up to the first data byte, the closing tags up to ``</TABLE>``)."""
    root = etree.Element(f"{{{VOTABLE_NS}}}VOTABLE", nsmap={None: VOTABLE_NS},
                         version=VOTABLE_VERSION)
    resource = etree.SubElement(root, f"{{{VOTABLE_NS}}}RESOURCE", type="results")
    _info(resource, "QUERY_STATUS", "OK")
    for name, value in infos:
        _info(resource, name, value)
    table = etree.SubElement(resource, f"{{{VOTABLE_NS}}}TABLE")
    for plan, field_id in zip(plans, safe_ids([p.column.name for p in plans]), strict=True):
        c = plan.column
        field = etree.SubElement(table, f"{{{VOTABLE_NS}}}FIELD", name=c.name, ID=field_id,
                                 datatype=c.datatype)
        optional: list[tuple[str, str | None]] = [
            ("arraysize", plan.arraysize), ("xtype", c.xtype), ("unit", c.unit),
            ("ucd", c.ucd), ("utype", c.utype)]
        for attr, attr_value in optional:
            if attr_value:
                field.set(attr, xml_text(attr_value))
        if c.description:
            etree.SubElement(field, f"{{{VOTABLE_NS}}}DESCRIPTION").text = xml_text(c.description)
        if serialization == "BINARY" and plan.kind in col.INT_NULLS:
            etree.SubElement(field, f"{{{VOTABLE_NS}}}VALUES",
                             null=str(col.INT_NULLS[plan.kind]))
    data = etree.SubElement(table, f"{{{VOTABLE_NS}}}DATA")
    if serialization == "TABLEDATA":
        etree.SubElement(data, f"{{{VOTABLE_NS}}}TABLEDATA").text = _MARKER
    else:
        holder = etree.SubElement(data, f"{{{VOTABLE_NS}}}{serialization}")
        etree.SubElement(holder, f"{{{VOTABLE_NS}}}STREAM", encoding="base64").text = _MARKER
    text = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    head, tail = text.split(_MARKER.encode(), 1)
    tail = tail[: tail.index(b"</TABLE>") + len(b"</TABLE>")]
    return head + b"\n", b"\n" + tail.lstrip() + b"\n"


def trailer(status: str | None, message: str | None, resources: bytes = b"") -> bytes:
    """The trailing QUERY_STATUS INFO (OVERFLOW or ERROR, DALI 4.4.1/4.4.2), the end of
    the results RESOURCE, the further ``resources`` (service descriptors) and the end."""
    parts = []
    if status:
        body = col.xml_escape(message) if message else ""
        parts.append(f'<INFO name="QUERY_STATUS" value="{status}">{body}</INFO>\n')
    parts.append("</RESOURCE>\n")
    return "".join(parts).encode() + resources + b"</VOTABLE>\n"


# ---------------------------------------------------------------- TABLEDATA


def tabledata_rows(plans: Sequence[ColumnPlan], values: Sequence[Sequence[Any]]) -> bytes:
    """``<TR><TD>..</TD></TR>`` lines for one batch; NULL is an empty TD."""
    cells = [xml_cells(plan, column) for plan, column in zip(plans, values, strict=True)]
    body = "</TD></TR>\n<TR><TD>".join(map("</TD><TD>".join, zip(*cells, strict=False)))
    return ("<TR><TD>" + body + "</TD></TR>\n").encode("utf-8", "replace")


def text_cells(plan: ColumnPlan, values: Sequence[Any], *,
               true_false: tuple[str, str] = ("T", "F")) -> list[str]:
    """One column's cells as unescaped DALI text ('' for NULL)."""
    kind = plan.kind
    if kind in (col.CHAR, col.UNICODE, col.TIMESTAMP):
        return col.texts(values, kind)[0]
    if kind == col.GEOMETRY:
        counts, flat = col.geometry(values, plan)
        return col.format_arrays(counts, flat, col.null_mask(values), geometry=True)
    if kind == col.ARRAY:
        counts, flat = col.generic_arrays(values, plan)
        return col.format_arrays(counts, flat, col.null_mask(values))
    return col.scalar_texts(values, kind, true_false=true_false)


def xml_cells(plan: ColumnPlan, values: Sequence[Any]) -> list[str]:
    cells = text_cells(plan, values)
    if plan.kind in (col.CHAR, col.UNICODE):
        return col.xml_escape_column(cells)
    return cells


# ---------------------------------------------------------------- BINARY / BINARY2

Block = tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_] | None]


def binary_rows(plans: Sequence[ColumnPlan], values: Sequence[Sequence[Any]], *,
                binary2: bool) -> bytes:
    """The BINARY or BINARY2 bytes of one batch (before base64).

    Each column contributes ``(n, w)`` byte blocks; variable-length cells come padded
    with a mask of their real bytes.  The blocks are laid side by side in one matrix
    and the masked compress (``matrix[valid]``) reads it back in row-major order,
    which is exactly the record stream.
    """
    n = len(values[0])
    blocks: list[Block] = []
    nulls = np.zeros((n, len(plans)), dtype=np.bool_) if binary2 else None
    for index, (plan, column) in enumerate(zip(plans, values, strict=True)):
        mask = _column_blocks(plan, column, n, blocks)
        if mask is not None and nulls is not None:
            nulls[:, index] = mask
    if nulls is not None:
        blocks.insert(0, (np.packbits(nulls, axis=1), None))  # MSB of byte 0: column 1
    width = sum(block.shape[1] for block, _ in blocks)
    matrix = np.empty((n, width), dtype=np.uint8)
    valid: npt.NDArray[np.bool_] | None = None
    pos = 0
    for block, block_valid in blocks:
        w = block.shape[1]
        matrix[:, pos:pos + w] = block
        if block_valid is not None:
            if valid is None:
                valid = np.ones((n, width), dtype=np.bool_)
            valid[:, pos:pos + w] = block_valid
        pos += w
    return matrix.tobytes() if valid is None else matrix[valid].tobytes()


def _column_blocks(plan: ColumnPlan, values: Sequence[Any], n: int, blocks: list[Block]
                   ) -> npt.NDArray[np.bool_] | None:
    """Append the column's blocks; return its NULL mask (None: no NULLs)."""
    kind = plan.kind
    if kind in col.SCALAR_DTYPES:
        array, mask = col.numbers(values, kind)
        blocks.append((array.view(np.uint8).reshape(n, array.itemsize), None))
        return mask
    if kind == col.BOOL:
        blocks.append((col.booleans(values).reshape(n, 1), None))
        return col.null_mask(values)
    if kind in (col.CHAR, col.UNICODE, col.TIMESTAMP):
        cells, mask = col.texts(values, kind)
        enc_kind = col.UNICODE if kind == col.UNICODE else col.CHAR
        if plan.fixed_count is not None:
            blocks.append((_fixed_strings(cells, enc_kind, plan.fixed_count), None))
        else:
            counts, lengths, data = col.encoded_strings(cells, enc_kind)
            _variable(counts, np.frombuffer(data, np.uint8), lengths, blocks)
        return mask
    if kind in (col.GEOMETRY, col.ARRAY):
        mask = col.null_mask(values)
        if kind == col.GEOMETRY:
            counts, flat = col.geometry(values, plan)
        else:
            counts, flat = col.generic_arrays(values, plan)
        dtype = np.dtype(plan.element_dtype or ">f8")
        flat = flat.astype(dtype)
        if plan.fixed_count is None:
            _variable(counts, flat.view(np.uint8), counts * dtype.itemsize, blocks)
            return mask
        filler = np.array(col.element_null(dtype.str), dtype=dtype)
        fixed = np.full((n, plan.fixed_count), filler, dtype=dtype)
        present = counts == plan.fixed_count
        if int(counts[~present].sum()) != 0:
            raise ValueError(f"column {plan.column.name}: array sizes differ from "
                             f"arraysize {plan.fixed_count}")
        fixed[present] = flat.reshape(-1, plan.fixed_count)
        blocks.append((fixed.view(np.uint8).reshape(n, dtype.itemsize * plan.fixed_count),
                       None))
        return mask
    raise AssertionError(kind)  # pragma: no cover - plan_column makes only the kinds above


def _fixed_strings(cells: list[str], kind: str, size: int) -> npt.NDArray[np.uint8]:
    """char(n)/unicodeChar(n): truncated or NUL-padded to exactly n characters."""
    if kind == col.UNICODE:
        raw = [c[:size].encode("utf-16-be", "replace") for c in cells]
        width = 2 * size
    else:
        raw = [c[:size].encode("ascii", "replace") for c in cells]
        width = size
    return np.array(raw, dtype=f"S{width}").view(np.uint8).reshape(len(cells), width)


def _variable(counts: npt.NDArray[np.int64], data: npt.NDArray[np.uint8],
              lengths: npt.NDArray[np.int64], blocks: list[Block]) -> None:
    """A variable-length cell: 4-byte big-endian element count, then the elements."""
    n = counts.shape[0]
    blocks.append((counts.astype(">i4").view(np.uint8).reshape(n, 4), None))
    width = int(lengths.max(initial=0))
    if width == 0:
        return
    valid = np.arange(width) < lengths[:, None]
    matrix = np.zeros((n, width), dtype=np.uint8)
    matrix[valid] = data
    blocks.append((matrix, valid))


class Base64Lines:
    """Incremental base64 in 76-character lines; a partial 57-byte group waits for more."""

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        if self._carry:
            data = self._carry + data
        whole = len(data) - len(data) % _LINE_BYTES
        self._carry = data[whole:]
        if whole == 0:
            return b""
        encoded = pybase64.b64encode(memoryview(data)[:whole])
        lines = np.frombuffer(encoded, dtype=np.uint8).reshape(-1, 76)
        out = np.empty((lines.shape[0], 77), dtype=np.uint8)
        out[:, :76] = lines
        out[:, 76] = 10
        return out.tobytes()

    def finish(self) -> bytes:
        carry, self._carry = self._carry, b""
        return pybase64.b64encode(carry) + b"\n" if carry else b""
