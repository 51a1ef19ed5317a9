"""Result rows built by PostgreSQL and streamed with ``COPY ... (FORMAT binary)``.

Turning every value into a Python object and back (psycopg2 rows, then packing)
caps a streamed result near a third of the database's own COPY rate.  For results
whose columns are all scalars (numbers, booleans, strings, timestamps) PostgreSQL
can write each output row itself, as one bytea: a VOTable BINARY2 row (the null
mask, then each value in VOTable's big-endian form: ``float8send``, ``int4send``...;
strings as a length and bytes), or a CSV line (RFC 4180, CRLF).  Python then only
strips COPY's 6-byte per-row framing, base64-encodes (BINARY2) and sends.
Geometry and array columns keep the general writers in :mod:`vo_service.serialize`;
both paths must write the same values (the tests compare them).

Row-level security applies as for any query: the COPY runs in the requester's
bound, read-only transaction.
"""

from __future__ import annotations

import queue
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import suppress
from typing import Any

import psycopg2
import psycopg2.extensions

from vo_service.result import ResultColumn
from vo_service.serialize import votable
from vo_service.serialize.columns import plan_column
from vo_service.serialize.results import ResultInfo

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_CHUNK_BYTES = 1 << 18
_SENDS = {"short": ("int2send", "int2", "0"), "int": ("int4send", "int4", "0"),
          "long": ("int8send", "int8", "0"), "float": ("float4send", "float4", "'NaN'"),
          "double": ("float8send", "float8", "'NaN'")}


def _counted(text: str) -> str:
    """A VOTable variable-length char value: int32 byte count, then the bytes.

    ``textsend`` is several times cheaper than ``convert_to`` (measured); VOTable char
    is ASCII, so the rare non-ASCII value has its other characters replaced by '?',
    as in the general writer.
    """
    ascii_only = f"regexp_replace({text}, '[^[:ascii:]]', '?', 'g')"
    return (f"CASE WHEN octet_length({text}) = char_length({text}) "
            f"THEN int4send(octet_length({text})) || textsend({text}) "
            f"ELSE int4send(octet_length({ascii_only})) || textsend({ascii_only}) END")


def _value(column: ResultColumn, ref: str) -> str | None:
    scalar = column.arraysize in (None, "1")
    if column.datatype in _SENDS and scalar and column.xtype is None:
        send, cast, zero = _SENDS[column.datatype]
        return f"{send}(coalesce({ref}::{cast}, {zero}::{cast}))"
    if column.datatype == "boolean" and scalar and column.xtype is None:
        return (f"CASE WHEN {ref} THEN '\\x54'::bytea WHEN NOT {ref} THEN '\\x46'::bytea "
                "ELSE '\\x3f'::bytea END")
    if column.datatype == "char" and column.arraysize in (None, "*"):
        if column.xtype == "timestamp":  # DALI: ISO 8601 with 'T'; always ASCII
            text = f"replace(coalesce({ref}::text, ''), ' ', 'T')"
            return f"int4send(octet_length({text})) || textsend({text})"
        if column.xtype is None:
            return _counted(f"coalesce({ref}::text, '')")
    return None


def _is_null(column: ResultColumn, ref: str) -> str:
    # The general writer flags NaN floats as null too; both paths must agree.
    if column.datatype in ("float", "double"):
        return f"({ref} IS NULL OR {ref} = 'NaN')"
    return f"({ref} IS NULL)"


def row_sql(columns: Sequence[ResultColumn], inner_sql: str) -> str | None:
    """``SELECT <BINARY2 row> FROM (inner) q``, or None if a column needs the general writer.

    The translator names its output columns c1..cN.
    """
    refs = [f"q.c{i + 1}" for i in range(len(columns))]
    values = [_value(c, r) for c, r in zip(columns, refs, strict=True)]
    if not columns or any(v is None for v in values):
        return None
    mask = []
    for start in range(0, len(columns), 8):
        # PostgreSQL gives << and | the same precedence: parenthesise each term.
        bits = " | ".join(
            f"(({_is_null(columns[i], refs[i])})::int << {7 - (i - start)})"
            for i in range(start, min(start + 8, len(columns))))
        mask.append(f"set_byte('\\x00'::bytea, 0, {bits})")
    row = " || ".join([*mask, *(v for v in values if v is not None)])
    return f"SELECT {row} FROM ({inner_sql}) AS q"


def _csv_value(column: ResultColumn, ref: str) -> str | None:
    """One CSV cell as text, written exactly as the general CSV writer writes it."""
    scalar = column.arraysize in (None, "1")
    if column.datatype in ("short", "int", "long") and scalar and column.xtype is None:
        return f"coalesce({ref}::text, '')"
    if column.datatype in ("float", "double") and scalar and column.xtype is None:
        return (f"CASE WHEN {ref} IS NULL THEN '' WHEN {ref} = 'Infinity' THEN '+Inf' "
                f"WHEN {ref} = '-Infinity' THEN '-Inf' ELSE {ref}::text END")
    if column.datatype == "boolean" and scalar and column.xtype is None:
        return f"CASE WHEN {ref} THEN 'true' WHEN NOT {ref} THEN 'false' ELSE '' END"
    if column.datatype in ("char", "unicodeChar") and column.arraysize in (None, "*"):
        if column.xtype == "timestamp":
            return f"replace(coalesce({ref}::text, ''), ' ', 'T')"
        if column.xtype is None:
            v = f"coalesce({ref}::text, '')"
            special = (f"strpos({v}, ',') + strpos({v}, '\"') + strpos({v}, chr(10)) "
                       f"+ strpos({v}, chr(13))")
            return (f"CASE WHEN {special} > 0 THEN '\"' || replace({v}, '\"', '\"\"') "
                    f"|| '\"' ELSE {v} END")
    return None


def csv_row_sql(columns: Sequence[ResultColumn], inner_sql: str) -> str | None:
    """``SELECT <CSV line as bytea> FROM (inner) q``, or None if a column needs Python."""
    refs = [f"q.c{i + 1}" for i in range(len(columns))]
    cells = [_csv_value(c, r) for c, r in zip(columns, refs, strict=True)]
    if not columns or any(c is None for c in cells):
        return None
    line = " || ',' || ".join(c for c in cells if c is not None)
    return f"SELECT textsend({line} || chr(13) || chr(10)) FROM ({inner_sql}) AS q"


class _Done:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _Sink:
    """psycopg2's COPY target: one ``write`` per COPY message (about one row each)."""

    def __init__(self, out: queue.Queue[Any], maxrec: int, stop: threading.Event,
                 base64: bool) -> None:
        self.out = out
        self.encode = base64
        self.maxrec = maxrec
        self.stop = stop
        self.rows = 0
        self.overflow = False
        self.started = False
        self.parts: list[bytes] = []
        self.size = 0
        self.base64 = votable.Base64Lines()

    def write(self, data: bytes) -> int:
        # The common case: one message holding exactly one row of our one column.
        size = len(data)
        if (self.started and size > 6 and data[:2] == b"\x00\x01"
                and int.from_bytes(data[2:6], "big") == size - 6 and self.rows < self.maxrec):
            self.parts.append(data[6:])
            self.size += size - 6
            self.rows += 1
            if self.size >= _CHUNK_BYTES:
                self.flush()
            return size
        view = memoryview(data)
        offset = 0
        if not self.started:
            self.started = True
            if bytes(view[:11]) != _SIGNATURE:
                raise ValueError("not a binary COPY stream")
            (extension,) = struct.unpack_from(">i", view, 15)
            offset = 19 + extension
        while offset < len(view):
            (fields,) = struct.unpack_from(">h", view, offset)
            if fields == -1:
                break
            (length,) = struct.unpack_from(">i", view, offset + 2)
            if self.rows == self.maxrec:
                self.overflow = True
            else:
                self.parts.append(bytes(view[offset + 6: offset + 6 + length]))
                self.size += length
                self.rows += 1
            offset += 6 + length
        if self.size >= _CHUNK_BYTES:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.parts:
            data = b"".join(self.parts)
            chunk = self.base64.feed(data) if self.encode else data
            self.parts.clear()
            self.size = 0
            self._put(chunk)

    def _put(self, item: Any) -> None:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        raise RuntimeError("the client went away")


class CopyStream:
    """Runs the COPY in its own thread and hands out the result bytes in order."""

    def __init__(self, connection: psycopg2.extensions.connection, sql: str,
                 columns: Sequence[ResultColumn], maxrec: int, *, base64: bool) -> None:
        self.connection = connection
        self.sql = sql
        self.columns = columns
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=8)
        self.stop = threading.Event()
        self.sink = _Sink(self.queue, maxrec, self.stop, base64)
        self.thread = threading.Thread(target=self._copy, name="tap-copy", daemon=True)
        self._first: Any = None

    def _copy(self) -> None:
        error: BaseException | None = None
        try:
            with self.connection.cursor() as cur:
                cur.copy_expert(f"COPY ({self.sql}) TO STDOUT WITH (FORMAT binary)", self.sink)
            self.sink.flush()
        except BaseException as exc:  # reported in the stream, or raised before it starts
            error = exc
        with suppress(queue.Full):
            self.queue.put(_Done(error), timeout=5)

    def start(self) -> None:
        """Start copying and wait for the first data (or the error that prevents it)."""
        self.thread.start()
        self._first = self.queue.get()
        if isinstance(self._first, _Done) and self._first.error is not None:
            raise self._first.error

    def cancel(self) -> None:
        self.stop.set()

    def _rows(self, info: ResultInfo) -> Iterator[bytes | _Done]:
        item = self._first
        while not isinstance(item, _Done):
            yield item
            item = self.queue.get()
        info.rows = self.sink.rows
        info.overflow = self.sink.overflow
        if item.error is not None:
            text = str(item.error).strip()
            info.error = text.splitlines()[0] if text else type(item.error).__name__
        yield item

    def votable(self, info: ResultInfo) -> Iterator[bytes]:
        plans = [plan_column(c) for c in self.columns]
        head, close_data = votable.document_parts(plans, "BINARY2", info.all_infos())
        yield head
        for item in self._rows(info):
            if isinstance(item, bytes):
                yield item
        rest = self.sink.base64.finish()
        if info.error is not None:
            yield rest + close_data + votable.trailer("ERROR", info.error)
            return
        status = "OVERFLOW" if info.overflow else None
        message = "the result was truncated at MAXREC rows" if info.overflow else None
        yield rest + close_data + votable.trailer(status, message)

    def csv(self, info: ResultInfo) -> Iterator[bytes]:
        """CSV has no place for a status: an error mid-stream ends the text there."""
        yield csv_header(self.columns)
        for item in self._rows(info):
            if isinstance(item, bytes):
                yield item


def csv_header(columns: Sequence[ResultColumn]) -> bytes:
    names = [f'"{c.name.replace(chr(34), chr(34) * 2)}"'
             if any(ch in c.name for ch in ',"\r\n') else c.name for c in columns]
    return (",".join(names) + "\r\n").encode()
