"""Result rows built by PostgreSQL and streamed with ``COPY ... TO STDOUT``.

Turning every value into a Python object and back (psycopg2 rows, then packing)
caps a streamed result near a third of the database's own COPY rate.  For results
whose columns are all scalars (numbers, booleans, strings, timestamps) PostgreSQL
writes the rows itself:

* BINARY2: each row is one bytea, the null mask then each value in VOTable's
  big-endian form (``float8send``, ``int4send``...; strings as a length and bytes),
  sent with ``COPY (FORMAT binary)``; Python strips COPY's 6-byte framing of each
  row and base64-encodes.
* CSV: ``COPY (FORMAT csv)`` of the cells, which quotes exactly where RFC 4180
  needs it; Python turns each row's LF into CRLF.

PostgreSQL sends every row in a message of its own and psycopg2 hands each message
to Python, a million calls for a million rows: they only append to a list, and the
framing of a whole batch is removed at once with C-level ``map`` calls.  Geometry and
array columns keep the general writers in :mod:`vo_service.serialize`; both paths
must write the same values (the tests compare them).

Row-level security applies as for any query: the COPY runs in the requester's
bound, read-only transaction.
"""

from __future__ import annotations

import operator
import queue
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from typing import Any

import psycopg2
import psycopg2.extensions

from vo_service.result import ResultColumn
from vo_service.serialize import votable
from vo_service.serialize.columns import plan_column
from vo_service.serialize.results import (
    CSV_BLANK_ROW,
    ResultInfo,
    csv_quote,
    log_reported_failure,
    stream_failure,
)

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_TRAILER = b"\xff\xff"
_VALUE = operator.itemgetter(slice(6, None))  # a binary row message without its framing
_LINE = operator.itemgetter(slice(None, -1))  # a CSV row message without its LF
_BLANK = CSV_BLANK_ROW.encode()
_CHUNK_BYTES = 1 << 18
_FIRST_BATCH, _MAX_BATCH = 64, 8192
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


def _null_mask(columns: Sequence[ResultColumn], refs: Sequence[str]) -> str:
    """BINARY2's null flags, one bit per column, most significant bit first.

    Most rows have no NULL: one ``num_nulls`` call (NaN counted as NULL through
    ``nullif``) then gives the all-zero mask, about a tenth of the row's cost less
    than computing the bits (measured with callgrind).
    """
    size = (len(columns) + 7) // 8
    nullable = ", ".join(f"nullif({r}, 'NaN')" if c.datatype in ("float", "double") else r
                         for c, r in zip(columns, refs, strict=True))
    bytes_ = []
    for start in range(0, len(columns), 8):
        bits = " + ".join(
            f"CASE WHEN {_is_null(columns[i], refs[i])} THEN {1 << (7 - (i - start))} ELSE 0 END"
            for i in range(start, min(start + 8, len(columns))))
        bytes_.append(f"set_byte('\\x00'::bytea, 0, {bits})")
    return (f"CASE WHEN num_nulls({nullable}) = 0 THEN '\\x{'00' * size}'::bytea "
            f"ELSE {' || '.join(bytes_)} END")


def row_sql(columns: Sequence[ResultColumn], inner_sql: str) -> str | None:
    """``SELECT <BINARY2 row> FROM (inner) q``, or None if a column needs the general writer.

    The translator names its output columns c1..cN.
    """
    refs = [f"q.c{i + 1}" for i in range(len(columns))]
    values = [_value(c, r) for c, r in zip(columns, refs, strict=True)]
    if not columns or any(v is None for v in values):
        return None
    row = " || ".join([_null_mask(columns, refs), *(v for v in values if v is not None)])
    return f"SELECT {row} FROM ({inner_sql}) AS q"


def _csv_cell(column: ResultColumn, ref: str) -> str | None:
    """One CSV cell, NULL for an empty cell; COPY adds the quotes a cell needs.

    The values are the general CSV writer's; the one difference in bytes is an
    empty string, which COPY quotes (``""``) to tell it from NULL.
    """
    scalar = column.arraysize in (None, "1")
    if column.datatype in ("short", "int", "long") and scalar and column.xtype is None:
        return ref
    if column.datatype in ("float", "double") and scalar and column.xtype is None:
        return (f"CASE WHEN {ref} = 'Infinity' THEN '+Inf' WHEN {ref} = '-Infinity' "
                f"THEN '-Inf' ELSE {ref}::text END")
    if column.datatype == "boolean" and scalar and column.xtype is None:
        return f"CASE WHEN {ref} THEN 'true' WHEN NOT {ref} THEN 'false' END"
    if column.datatype in ("char", "unicodeChar") and column.arraysize in (None, "*"):
        if column.xtype == "timestamp":
            return f"replace({ref}::text, ' ', 'T')"
        if column.xtype is None:
            return f"{ref}::text"
    return None


def csv_row_sql(columns: Sequence[ResultColumn], inner_sql: str) -> str | None:
    """``SELECT <CSV cells> FROM (inner) q`` for ``COPY (FORMAT csv)``, or None if a
    column needs the general writer."""
    refs = [f"q.c{i + 1}" for i in range(len(columns))]
    cells = [_csv_cell(c, r) for c, r in zip(columns, refs, strict=True)]
    if not columns or any(c is None for c in cells):
        return None
    return f"SELECT {', '.join(c for c in cells if c is not None)} FROM ({inner_sql}) AS q"


class ClientGone(RuntimeError):
    """The consumer stopped reading (a client that disconnected): the COPY ends."""


class _Done:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _Sink:
    """psycopg2's COPY target: ``write`` per row message, ``flush`` per batch.

    PostgreSQL sends each row in a CopyData message of its own (Frontend/Backend
    Protocol, "COPY Operations"); in binary format the file header comes ahead of
    the first row and the trailer alone at the end.
    """

    def __init__(self, out: queue.Queue[Any], maxrec: int, stop: threading.Event, *,
                 csv: bool, one_column: bool = False) -> None:
        self.out = out
        self.csv = csv
        # A one-column NULL is an empty line, which CSV readers skip (results.py).
        self.blank_rows = csv and one_column
        self.maxrec = maxrec
        self.stop = stop
        self.rows = 0
        self.overflow = False
        self.started = False
        self.messages: list[bytes] = []
        # Rows per flush: few at first for a quick first byte, then sized from the
        # rows seen so that a chunk stays near _CHUNK_BYTES.
        self.batch = _FIRST_BATCH
        self.base64 = votable.Base64Lines()

    def write(self, data: bytes) -> None:
        self.messages.append(data)
        if len(self.messages) >= self.batch:
            self.flush()

    def flush(self) -> None:
        rows, self.messages = self.messages, []
        if not self.csv:
            rows = self._values(rows)
        if self.rows + len(rows) > self.maxrec:
            self.overflow = True
            del rows[self.maxrec - self.rows:]
        if not rows:
            return
        self.rows += len(rows)
        if self.csv:  # RFC 4180 ends lines with CRLF, COPY with LF
            lines: Iterable[bytes] = map(_LINE, rows)
            if self.blank_rows:
                lines = (line or _BLANK for line in lines)
            data = b"\r\n".join(lines) + b"\r\n"
        else:
            data = b"".join(rows)
        self.batch = max(1, min(_MAX_BATCH, _CHUNK_BYTES * len(rows) // len(data)))
        self.put(data if self.csv else self.base64.feed(data))

    def _values(self, messages: list[bytes]) -> list[bytes]:
        """Binary COPY: the rows' values, without the file header and trailer."""
        if not self.started and messages:
            self.started = True
            messages[0] = _skip_header(messages[0])
            if not messages[0]:
                del messages[0]
        if messages and messages[-1] == _TRAILER:
            messages.pop()
        return _row_values(messages)

    def put(self, item: Any) -> None:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        raise ClientGone("the client went away")


def _skip_header(message: bytes) -> bytes:
    """The first message without the binary COPY file header (signature, flags, extension)."""
    if message[:11] != _SIGNATURE:
        raise ValueError("not a binary COPY stream")
    (extension,) = struct.unpack_from(">i", message, 15)
    return message[19 + extension:]


def _row_values(messages: list[bytes]) -> list[bytes]:
    """The one value of each row, without the row's field count and the value's length.

    Each message is one row (see :class:`_Sink`) of one field that is never NULL (the
    row expressions coalesce every value): ``00 01``, the value's length, which is
    the message's length less 6, then the value.  The first message of each batch
    is checked for exactly that; a message too short to hold a value is refused.
    """
    if not messages:
        return []
    first = messages[0]
    if (min(map(len, messages)) <= 6
            or struct.unpack_from(">hi", first) != (1, len(first) - 6)):
        raise ValueError("unexpected row in the COPY stream")
    return list(map(_VALUE, messages))


class CopyStream:
    """Runs the COPY in its own thread and hands out the result bytes in order."""

    def __init__(self, connection: psycopg2.extensions.connection, sql: str,
                 columns: Sequence[ResultColumn], maxrec: int, *, csv: bool) -> None:
        self.connection = connection
        self.sql = sql
        self.columns = columns
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=8)
        self.stop = threading.Event()
        self.sink = _Sink(self.queue, maxrec, self.stop, csv=csv,
                          one_column=len(columns) == 1)
        self.thread = threading.Thread(target=self._copy, name="tap-copy", daemon=True)
        self._first: Any = None
        self.failure: BaseException | None = None

    def _copy(self) -> None:
        error: BaseException | None = None
        try:
            with self.connection.cursor() as cur:
                copy_format = "csv" if self.sink.csv else "binary"
                cur.copy_expert(f"COPY ({self.sql}) TO STDOUT (FORMAT {copy_format})",
                                self.sink)
            self.sink.flush()
        except BaseException as exc:  # reported in the stream, or raised before it starts
            error = exc
        # Waits as long as the consumer is there: a slow reader must still get the end
        # (a lost end marker would leave it waiting for ever).
        with suppress(ClientGone):
            self.sink.put(_Done(error))

    def start(self) -> None:
        """Start copying and wait for the first data (or the error that prevents it)."""
        self.thread.start()
        self._first = self.queue.get()
        if isinstance(self._first, _Done) and self._first.error is not None:
            raise self._first.error

    def cancel(self) -> None:
        self.stop.set()

    def _rows(self, info: ResultInfo) -> Iterator[bytes]:
        """The data chunks; afterwards ``info`` holds the outcome and :attr:`failure`
        the error that ended the COPY, if one did."""
        item = self._first
        while not isinstance(item, _Done):
            yield item
            item = self.queue.get()
        info.rows = self.sink.rows
        info.overflow = self.sink.overflow and item.error is None
        self.failure = item.error

    def votable(self, info: ResultInfo) -> Iterator[bytes]:
        """The BINARY2 document; a failure mid-stream is reported in it, as by the
        general writers (:mod:`vo_service.serialize.results`)."""
        plans = [plan_column(c) for c in self.columns]
        head, close_data = votable.document_parts(plans, "BINARY2", info.all_infos())
        yield head
        yield from self._rows(info)
        rest = self.sink.base64.finish()
        if self.failure is not None:
            stream_failure(info, self.failure)
            yield rest + close_data + votable.trailer("ERROR", info.error, info.resources)
            log_reported_failure(info, self.failure)
            return
        status = "OVERFLOW" if info.overflow else None
        message = "the result was truncated at MAXREC rows" if info.overflow else None
        yield rest + close_data + votable.trailer(status, message, info.resources)

    def csv(self, info: ResultInfo) -> Iterator[bytes]:
        """CSV has no place for a status: a failure mid-stream raises
        :class:`~vo_service.serialize.results.ResultStreamFailed` after the rows that
        arrived, so that the response is aborted rather than ended cleanly."""
        yield csv_header(self.columns)
        yield from self._rows(info)
        if self.failure is not None:
            raise stream_failure(info, self.failure) from self.failure


def csv_header(columns: Sequence[ResultColumn]) -> bytes:
    """The CSV header line, quoted as the general writer quotes it."""
    names = [c.name for c in columns]
    return (",".join(csv_quote(names, names)) + "\r\n").encode()
