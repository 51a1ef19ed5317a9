"""A result that breaks off mid-stream says so in every format (results.py docstring).

VOTable ends with a trailing ``QUERY_STATUS=ERROR`` INFO and closes its elements;
CSV and TSV raise :class:`ResultStreamFailed` after the rows that were written, so
that the HTTP layer aborts the response instead of ending it cleanly; FITS, which
writes nothing before its last row, raises the failure before its first byte.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from astropy.io.votable import parse

from tests.serialize import sample
from tests.xsd import validate
from vo_service.errors import ServiceError, TransientFault
from vo_service.serialize.formats import resolve_format
from vo_service.serialize.results import ResultInfo, ResultStreamFailed, stream_result

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
RAISING_FORMATS = ["csv", "tsv", "fits"]
VOTABLE_FORMATS = ["votable/td", "votable/b", "votable/b2"]


def _collect(fmt: str, batches: Iterator[list[tuple[Any, ...]]], info: ResultInfo,
             **options: Any) -> tuple[bytes, BaseException | None]:
    """The bytes yielded before the writer stopped, and what it raised."""
    chunks: list[bytes] = []
    try:
        for chunk in stream_result(resolve_format(fmt), sample.COLUMNS, batches,
                                   maxrec=None, info=info, **options):
            chunks.append(chunk)
    except Exception as exc:
        return b"".join(chunks), exc
    return b"".join(chunks), None


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_formats_without_a_status_raise(fmt: str, caplog: pytest.LogCaptureFixture) -> None:
    rows = sample.rows()
    closed: list[bool] = []
    info = ResultInfo(query="SELECT 1")
    with caplog.at_level(logging.ERROR):
        out, raised = _collect(fmt, sample.failing_batches(rows, closed), info)
    assert isinstance(raised, ResultStreamFailed)
    assert "statement timeout" in raised.message and "CONTEXT" not in raised.message
    assert isinstance(raised.__cause__, RuntimeError)
    assert (raised.fault, raised.status) == ("FatalFault", 500)
    assert raised.rows == 5 and info.rows == 5 and info.error == raised.message
    assert not info.overflow and closed == [True]
    assert caplog.records == [], "the caller logs what it is raised"
    # The rows that arrived are all there, and nothing pretends the text is complete
    # beyond them (no status line, no extra line end).
    text = out.decode()
    separator = "," if fmt == "csv" else "\t"
    lines = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator)) \
        if fmt == "csv" else [line.split("\t") for line in text.split("\n")[:-1]]
    assert len(lines) == 1 + 5
    assert text.endswith("\r\n" if fmt == "csv" else "\n")


def test_fits_fails_before_its_first_byte() -> None:
    """FITS sends nothing before its last row is in: a failure while reading rows is
    the query's own, raised before any output (the caller can answer with an error
    document)."""
    closed: list[bool] = []
    out, raised = _collect("fits", sample.failing_batches(sample.rows(), closed),
                           ResultInfo())
    assert out == b"" and isinstance(raised, RuntimeError) and closed == [True]
    assert not isinstance(raised, ResultStreamFailed)


def test_the_cause_s_fault_is_kept() -> None:
    """A query cancelled at its time limit mid-stream is still a TransientFault (503)
    for a caller that has not sent its status yet."""
    def cancelled() -> Iterator[list[tuple[Any, ...]]]:
        yield sample.rows()[:3]
        raise TransientFault("the query ran into its time limit")

    _, raised = _collect("csv", cancelled(), ResultInfo())
    assert isinstance(raised, ResultStreamFailed) and isinstance(raised, ServiceError)
    assert (raised.fault, raised.status) == ("TransientFault", 503)
    assert "time limit" in raised.message


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_votable_reports_the_error_after_the_table(fmt: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    rows = sample.rows()
    closed: list[bool] = []
    info = ResultInfo(query="SELECT 1")
    with caplog.at_level(logging.ERROR):
        out, raised = _collect(fmt, sample.failing_batches(rows, closed), info)
    assert raised is None
    root = validate(out)  # every element closed
    resource = root.find(f"{VOT}RESOURCE")
    assert resource is not None
    assert (resource[0].get("name"), resource[0].get("value")) == ("QUERY_STATUS", "OK")
    assert resource[-2].tag == f"{VOT}TABLE"
    assert (resource[-1].get("name"), resource[-1].get("value")) == ("QUERY_STATUS", "ERROR")
    assert "statement timeout" in (resource[-1].text or "")
    assert len(parse(io.BytesIO(out)).get_first_table().array) == 5
    assert info.rows == 5 and info.error is not None and closed == [True]
    assert [r.levelname for r in caplog.records] == ["ERROR"], "logged once, by the writer"


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_votable_raises_after_the_document_when_asked(fmt: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    info = ResultInfo()
    with caplog.at_level(logging.ERROR):
        out, raised = _collect(fmt, sample.failing_batches(sample.rows(), []), info, reraise=True)
    assert isinstance(raised, ResultStreamFailed) and raised.rows == 5
    assert validate(out).findall(f".//{VOT}INFO")[-1].get("value") == "ERROR"
    assert caplog.records == []


@pytest.mark.parametrize("fmt", [*VOTABLE_FORMATS, *RAISING_FORMATS])
def test_a_failure_before_the_first_row_is_the_query_s_own(fmt: str) -> None:
    """Nothing was written: the caller can still answer with an error document."""
    class Refused(Exception):
        pass

    def broken() -> Iterator[list[tuple[Any, ...]]]:
        raise Refused("syntax error")
        yield []

    out, raised = _collect(fmt, broken(), ResultInfo())
    assert out == b"" and isinstance(raised, Refused)


@pytest.mark.parametrize("fmt", [*VOTABLE_FORMATS, *RAISING_FORMATS])
def test_a_bad_value_mid_stream_is_a_failure_too(fmt: str) -> None:
    """A value the writer cannot encode (here a garbled pgSphere point) in a later batch."""
    rows = sample.rows()
    bad = list(rows[2])
    bad[9] = "(oops)"
    info = ResultInfo()
    out, raised = _collect(fmt, iter([rows[:2], [tuple(bad)]]), info)
    if fmt == "fits":
        assert out == b"" and isinstance(raised, ValueError) and "oops" in str(raised)
        return
    if fmt in RAISING_FORMATS:
        assert isinstance(raised, ResultStreamFailed) and "oops" in raised.message
    else:
        assert raised is None
        assert validate(out).findall(f".//{VOT}INFO")[-1].get("value") == "ERROR"
    assert info.rows == 2
