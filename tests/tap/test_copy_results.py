"""The COPY sink on byte streams built here by the rules of PostgreSQL's binary and
CSV COPY output (the streams from a real server are covered by test_sync), and a
real COPY that fails after its first rows."""

from __future__ import annotations

import base64
import io
import logging
import queue
import struct
import threading
from typing import Any

import psycopg2
import psycopg2.errors
import pytest
from astropy.io.votable import parse

from tests.xsd import validate
from vo_service.result import ResultColumn
from vo_service.serialize.results import ResultInfo, ResultStreamFailed
from vo_service.services.copy_results import CopyStream, _Sink, csv_row_sql, row_sql

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"

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


def test_a_one_column_csv_null_is_not_an_empty_line() -> None:
    out: queue.Queue[bytes] = queue.Queue()
    sink = _Sink(out, 100, threading.Event(), csv=True, one_column=True)
    for message in (b"1\n", b"\n", b'""\n', b"4\n"):
        sink.write(message)
    sink.flush()
    assert b"".join(out.queue) == b'1\r\n""\r\n""\r\n4\r\n'


# ---------------------------------------------------------------- a real COPY that fails

# PostgreSQL sends the first rows, then fails on row 700 (as a statement timeout or a
# lost connection would after output began).
FAILING_INNER = ("SELECT i AS c1, 1 / (700 - i) AS c2, 'row ' || i AS c3 "
                 "FROM generate_series(1, 1000) AS i")
FAILING_COLUMNS = (ResultColumn("i", "int"), ResultColumn("q", "int"),
                   ResultColumn("label", "char", "*"))


def _copy(database: Any, *, csv: bool) -> tuple[CopyStream, Any]:
    conn = psycopg2.connect(database.query_dsn)
    build = csv_row_sql if csv else row_sql
    sql = build(FAILING_COLUMNS, FAILING_INNER)
    assert sql is not None
    copy = CopyStream(conn, sql, FAILING_COLUMNS, 10_000, csv=csv)
    copy.start()  # the first rows arrive before the failure
    return copy, conn


def test_copy_csv_failing_mid_stream_raises(database: Any,
                                            caplog: pytest.LogCaptureFixture) -> None:
    copy, conn = _copy(database, csv=True)
    info = ResultInfo()
    chunks: list[bytes] = []
    try:
        with caplog.at_level(logging.ERROR), pytest.raises(ResultStreamFailed) as caught:
            for chunk in copy.csv(info):
                chunks.append(chunk)
    finally:
        copy.cancel()
        conn.close()
    assert "division by zero" in caught.value.message
    assert isinstance(caught.value.__cause__, psycopg2.errors.DivisionByZero)
    assert info.error == caught.value.message and caught.value.rows == info.rows > 0
    text = b"".join(chunks).decode()
    lines = text.split("\r\n")
    assert lines[0] == "i,q,label" and lines[-1] == ""
    assert len(lines) == info.rows + 2 and lines[1] == "1,0,row 1"
    assert caplog.records == []


def test_copy_binary2_failing_mid_stream_reports_in_the_document(
        database: Any, caplog: pytest.LogCaptureFixture) -> None:
    copy, conn = _copy(database, csv=False)
    info = ResultInfo()
    try:
        with caplog.at_level(logging.ERROR):
            out = b"".join(copy.votable(info))
    finally:
        copy.cancel()
        conn.close()
    root = validate(out)
    resource = root.find(f"{VOT}RESOURCE")
    assert resource is not None and resource[-2].tag == f"{VOT}TABLE"
    assert resource[-1].get("value") == "ERROR"
    assert "division by zero" in (resource[-1].text or "")
    table = parse(io.BytesIO(out)).get_first_table().array
    assert 0 < len(table) == info.rows < 700
    assert list(table["i"][:3]) == [1, 2, 3]
    assert [r.levelname for r in caplog.records] == ["ERROR"]
