"""The COPY sink on byte streams built here by the rules of PostgreSQL's binary and
CSV COPY output (the streams from a real server are covered by test_sync)."""

from __future__ import annotations

import base64
import queue
import struct
import threading

import pytest

from vo_service.services.copy_results import _Sink

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = b"\xff\xff"
VALUES = [bytes([i % 256]) * (1 + i % 50) + b"\x00\x01\x00\x00\x00\x07" for i in range(300)]


def _row(value: bytes) -> bytes:
    return struct.pack(">hi", 1, len(value)) + value


def _run(messages: list[bytes], *, maxrec: int = 10_000, csv: bool = False) -> tuple[bytes, _Sink]:
    out: queue.Queue[bytes] = queue.Queue()
    sink = _Sink(out, maxrec, threading.Event(), csv=csv)
    for message in messages:
        sink.write(message)
    sink.flush()
    data = b"".join(out.queue)
    return (data if csv else data + sink.base64.finish()), sink


def _decoded(data: bytes) -> bytes:
    lines = data.split(b"\n")
    assert all(len(line) == 76 for line in lines[:-2]) and lines[-1] == b""
    return base64.b64decode(data)


def test_one_row_per_message_as_postgres_sends_them() -> None:
    messages = [HEADER + _row(VALUES[0]), *map(_row, VALUES[1:]), TRAILER]
    data, sink = _run(messages)
    assert _decoded(data) == b"".join(VALUES)
    assert sink.rows == len(VALUES) and not sink.overflow


def test_a_header_in_a_message_of_its_own_is_skipped() -> None:
    messages = [HEADER, *map(_row, VALUES), TRAILER]
    data, sink = _run(messages)
    assert _decoded(data) == b"".join(VALUES) and sink.rows == len(VALUES)


def test_an_empty_result_is_only_the_header_and_the_trailer() -> None:
    data, sink = _run([HEADER + TRAILER])
    assert data == b"" and sink.rows == 0


def test_rows_beyond_maxrec_are_dropped_and_flagged() -> None:
    messages = [HEADER + _row(VALUES[0]), *map(_row, VALUES[1:101]), TRAILER]
    data, sink = _run(messages, maxrec=100)
    assert _decoded(data) == b"".join(VALUES[:100])
    assert sink.rows == 100 and sink.overflow


def test_a_null_value_is_refused() -> None:
    messages = [HEADER + _row(b"x"), *map(_row, VALUES[:10]), struct.pack(">hi", 1, -1),
                *map(_row, VALUES[10:]), TRAILER]
    with pytest.raises(ValueError, match="unexpected row"):
        _run(messages)


def test_a_batch_that_does_not_start_with_one_row_is_refused() -> None:
    # The sink's first batch is 64 messages; PostgreSQL never sends two rows at once.
    messages = [HEADER + _row(b"x"), *map(_row, VALUES[:63]), _row(b"one") + _row(b"two"),
                TRAILER]
    with pytest.raises(ValueError, match="unexpected row"):
        _run(messages)


def test_csv_lines_end_in_crlf_and_quoted_line_breaks_stay() -> None:
    lines = [b'1,"two\nlines",x\n', b"2,,\n", *(b"%d,a,b\n" % i for i in range(3, 200))]
    data, sink = _run(lines, csv=True)
    assert data == b"".join(line[:-1] + b"\r\n" for line in lines)
    assert sink.rows == len(lines)
