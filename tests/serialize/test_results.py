"""Every result format written by stream_result, read back by independent readers.

astropy reads the VOTables and the FITS file, the csv module the CSV; the VOTables
are validated against the IVOA schema and linted by STILTS votlint.
"""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import parse
from lxml import etree

from tests.serialize import sample
from tests.xsd import validate
from vo_service.result import ResultColumn
from vo_service.serialize.formats import resolve_format
from vo_service.serialize.results import ResultInfo, stream_result

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
VOTABLE_FORMATS = ["votable/td", "votable/b", "votable/b2"]
KINDS = ["bool", "short", "int", "long", "float", "double", "char", "uni", "ts", "geo", "geo",
         "geo", "char"]


def write(fmt: str, rows: list[tuple[Any, ...]] | None = None, *, maxrec: int | None = None,
          batch: int = 3, columns: list[ResultColumn] | None = None,
          query: str | None = "SELECT * FROM t WHERE a < 1 & b > 2") -> tuple[bytes, ResultInfo]:
    rows = sample.rows() if rows is None else rows
    info = ResultInfo(query=query, infos=[("request", "doQuery")])
    batches = iter([rows[i:i + batch] for i in range(0, len(rows), batch)])
    out = b"".join(stream_result(resolve_format(fmt), columns or sample.COLUMNS, batches,
                                 maxrec=maxrec, info=info))
    return out, info


def _expected_char(value: str, serialization: str) -> str:
    if serialization == "TABLEDATA":
        return value.replace("\x01", "\ufffd")
    return value.encode("ascii", "replace").decode()


def check_votable(out: bytes, rows: list[tuple[Any, ...]], serialization: str) -> None:
    table = parse(io.BytesIO(out)).get_first_table()
    array = table.array
    names = array.dtype.names
    assert [f.name for f in table.fields] == [c.name for c in sample.COLUMNS]
    assert len(array) == len(rows)
    for r, row in enumerate(rows):
        for c, (kind, value) in enumerate(zip(KINDS, row, strict=True)):
            got = array[names[c]][r]
            masked = np.all(np.ma.getmaskarray(array[names[c]][r:r + 1]))
            where = f"row {r} column {names[c]}"
            if value is None:
                if kind == "geo":
                    assert masked or len(got) == 0, where
                else:
                    assert masked or got == "", where
            elif kind == "double" and math.isnan(value):
                assert masked, where  # NaN is reported as NULL
            elif kind == "float":
                assert np.float32(got) == np.float32(value), where
            elif kind == "char":
                assert got == _expected_char(value, serialization), where
            elif kind == "ts":
                assert got == sample.expected_text(value), where
            elif kind == "geo":
                np.testing.assert_allclose(np.asarray(got, dtype=float), sample.degrees(value),
                                           rtol=1e-15, atol=0, err_msg=where)
            else:
                assert got == value and not masked, where


@pytest.mark.parametrize("fmt,serialization", [
    ("votable/td", "TABLEDATA"), ("votable/b", "BINARY"), ("votable/b2", "BINARY2")])
def test_votable_round_trip(fmt: str, serialization: str) -> None:
    rows = sample.rows()
    out, info = write(fmt, rows)
    root = validate(out)
    assert root.get("version") in ("1.4", "1.5")
    resource = root.find(f"{VOT}RESOURCE")
    assert resource is not None and resource.get("type") == "results"
    infos = [(i.get("name"), i.get("value")) for i in resource.findall(f"{VOT}INFO")]
    assert infos[0] == ("QUERY_STATUS", "OK")
    assert ("QUERY", "SELECT * FROM t WHERE a < 1 & b > 2") in infos
    assert root.find(f".//{VOT}DATA/{VOT}{serialization}") is not None
    assert resource[-1].tag == f"{VOT}TABLE"  # no trailing status: nothing was cut
    fields = root.findall(f".//{VOT}FIELD")
    assert [f.get("xtype") for f in fields][8:12] == ["timestamp", "point", "circle", "polygon"]
    assert fields[5].get("ucd") == "pos.eq.ra" and fields[5].get("utype") == "obscore:x.y"
    assert re.fullmatch(r"[A-Za-z_][\w.-]*", fields[12].get("ID") or "")
    check_votable(out, rows, serialization)
    assert info.rows == len(rows) and not info.overflow and info.error is None


def test_base64_lines_are_short_and_whole() -> None:
    rows = sample.rows(400)
    out, _ = write("votable/b2", rows, batch=37)
    stream = re.search(rb"<STREAM encoding=\"base64\">(.*?)</STREAM>", out, re.S)
    assert stream is not None
    lines = [line for line in stream.group(1).split(b"\n") if line.strip()]
    assert all(len(line) == 76 for line in lines[:-1]) and len(lines[-1]) <= 76
    check_votable(out, rows, "BINARY2")


def _votlint(document: bytes, tmp_path: Path) -> str:
    path = tmp_path / "result.vot"
    path.write_bytes(document)
    done = subprocess.run(["stilts", "votlint", f"votable={path}"], capture_output=True,
                          text=True, timeout=120)
    return (done.stdout + done.stderr).strip()


@pytest.mark.skipif(shutil.which("stilts") is None, reason="STILTS is not installed")
@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_votlint_is_silent(fmt: str, tmp_path: Path) -> None:
    out, _ = write(fmt, maxrec=5)
    assert _votlint(without_polygon_xtype(out, fmt), tmp_path) == ""


def without_polygon_xtype(document: bytes, fmt: str) -> bytes:
    """The document as STILTS 3.4.7 votlint can check it.

    Its checker of binary cells with xtype="polygon" reads the cell wrongly ("Stream
    ended during data read", or running out of memory) also for astropy's own BINARY2,
    while STIL itself reads the same cells right; so that one xtype is removed from
    binary documents: the byte layout is still checked, and points and circles keep
    theirs.  TABLEDATA is linted as it is.
    """
    if fmt in ("votable/td", "tabledata"):
        return document
    return document.replace(b' xtype="polygon"', b"")


GEOMETRY_AS_TRANSLATED = [
    # What the ADQL translator declares for POINT(...), CIRCLE(...), CENTROID(...) and
    # POLYGON(...): arraysize "*" for every shape.
    ResultColumn("p", "double", "*", "point"), ResultColumn("c", "double", "*", "circle"),
    ResultColumn("centroid", "double", "*", "point"),
    ResultColumn("poly", "double", "*", "polygon"),
]


@pytest.mark.skipif(shutil.which("stilts") is None, reason="STILTS is not installed")
@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_declared_geometry_arraysize_matches_the_cells(fmt: str, tmp_path: Path) -> None:
    """DALI sizes (point 2, circle 3, polygon *) whatever the column says, in the FIELD
    and in the bytes alike: a FIELD saying "*" over fixed cells made readers lose
    every row."""
    rows = [(sample.POINT, sample.CIRCLE, sample.POINT, sample.POLYGON),
            (None, None, None, None)] * 3
    out, _ = write(fmt, rows, columns=GEOMETRY_AS_TRANSLATED)
    fields = validate(out).findall(f".//{VOT}FIELD")
    assert [f.get("arraysize") for f in fields] == ["2", "3", "2", "*"]
    # votlint 3.4.7 calls an empty TD of a fixed-size array a "Bad double string",
    # though VOTable 1.3+ makes an empty TD a NULL of any datatype: lint the rows
    # that have values.
    linted, _ = write(fmt, rows[::2], columns=GEOMETRY_AS_TRANSLATED)
    assert _votlint(without_polygon_xtype(linted, fmt), tmp_path) == ""
    array = parse(io.BytesIO(out)).get_first_table().array
    assert len(array) == len(rows)
    np.testing.assert_allclose(array["p"][0], sample.degrees(sample.POINT), rtol=1e-15)
    np.testing.assert_allclose(array["c"][2], sample.degrees(sample.CIRCLE), rtol=1e-15)
    np.testing.assert_allclose(array["poly"][4], sample.degrees(sample.POLYGON), rtol=1e-15)
    assert np.all(np.ma.getmaskarray(array["p"][1])) or len(array["p"][1]) == 0


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_overflow_only_when_a_row_was_cut(fmt: str) -> None:
    rows = sample.rows()
    exact, info = write(fmt, rows, maxrec=len(rows))
    assert b"OVERFLOW" not in exact and not info.overflow
    cut, info = write(fmt, rows, maxrec=4)
    root = validate(cut)
    resource = root.find(f"{VOT}RESOURCE")
    assert resource is not None
    assert resource[-1].tag == f"{VOT}INFO"
    assert (resource[-1].get("name"), resource[-1].get("value")) == ("QUERY_STATUS", "OVERFLOW")
    assert resource[-2].tag == f"{VOT}TABLE"
    assert info.overflow and info.rows == 4
    check_votable(cut, rows[:4], {"votable/td": "TABLEDATA", "votable/b": "BINARY"}.get(
        fmt, "BINARY2"))


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_maxrec_zero_is_metadata_only(fmt: str) -> None:
    out, info = write(fmt, maxrec=0)
    root = validate(out)
    assert len(root.findall(f".//{VOT}FIELD")) == len(sample.COLUMNS)
    assert root.findall(f".//{VOT}TR") == []
    assert len(parse(io.BytesIO(out)).get_first_table().array) == 0
    assert info.overflow and info.rows == 0
    empty, info = write(fmt, [], maxrec=0)
    assert b"OVERFLOW" not in empty and not info.overflow


@pytest.mark.parametrize("fmt", VOTABLE_FORMATS)
def test_error_mid_stream_ends_the_document(fmt: str) -> None:
    rows = sample.rows()
    closed: list[bool] = []
    info = ResultInfo(query="SELECT 1")
    out = b"".join(stream_result(resolve_format(fmt), sample.COLUMNS,
                                 sample.failing_batches(rows, closed), maxrec=None, info=info))
    root = validate(out)
    resource = root.find(f"{VOT}RESOURCE")
    assert resource is not None and resource[-1].get("value") == "ERROR"
    assert "statement timeout" in (resource[-1].text or "")
    assert resource[0].get("value") == "OK"
    check_votable(out, rows[:5], {"votable/td": "TABLEDATA", "votable/b": "BINARY"}.get(
        fmt, "BINARY2"))
    assert closed == [True] and info.error is not None and info.rows == 5


def test_consumer_that_stops_closes_the_batches() -> None:
    closed: list[bool] = []

    def endless() -> Iterator[list[tuple[Any, ...]]]:
        try:
            while True:
                yield sample.rows()
        finally:
            closed.append(True)

    stream = stream_result(resolve_format("csv"), sample.COLUMNS, endless(), maxrec=None,
                           info=ResultInfo())
    next(stream)
    next(stream)
    stream.close()  # what a disconnecting HTTP client causes
    assert closed == [True]


def test_maxrec_stops_reading_batches() -> None:
    pulled = []

    def counted() -> Iterator[list[tuple[Any, ...]]]:
        for i in range(100):
            pulled.append(i)
            yield sample.rows()

    write_info = ResultInfo()
    b"".join(stream_result(resolve_format("votable"), sample.COLUMNS, counted(), maxrec=10,
                           info=write_info))
    assert len(pulled) == 2 and write_info.overflow and write_info.rows == 10


def _text_expected(kind: str, value: Any, tsv: bool) -> str:
    if value is None:
        return ""
    if kind == "bool":
        return "true" if value else "false"
    if kind == "double" and math.isnan(value):
        return "NaN"
    if kind == "float" and math.isinf(value):
        return "+Inf"
    if kind == "ts":
        return str(sample.expected_text(value))
    if kind == "char" and tsv:
        return value.replace("\r\n", " ").replace("\t", " ").replace("\n", " ")
    return str(value)


def test_csv_is_rfc4180_with_header() -> None:
    rows = sample.rows()
    out, _ = write("text/csv", rows, maxrec=None)
    assert out.startswith(b"flag,small,n,big,real_v,dbl,label,uni,at,pos,circ,region,"
                          b"1 odd name\r\n")
    parsed = list(csv.reader(io.StringIO(out.decode(), newline="")))
    assert len(parsed) == len(rows) + 1
    for row, cells in zip(rows, parsed[1:], strict=True):
        for kind, value, cell in zip(KINDS, row, cells, strict=True):
            if kind == "geo" and value is not None:
                np.testing.assert_allclose([float(x) for x in cell.split()],
                                           sample.degrees(value), rtol=1e-15)
            else:
                assert cell == _text_expected(kind, value, False)


def test_csv_tells_an_empty_string_from_null() -> None:
    """As PostgreSQL's CSV (the COPY path) writes them: NULL is an empty cell, an empty
    string a quoted one."""
    columns = [ResultColumn("label", "char", "*"), ResultColumn("n", "int")]
    out, _ = write("csv", [("", 1), (None, 2), ("a,b", None)], columns=columns)
    assert out == b'label,n\r\n"",1\r\n,2\r\n"a,b",\r\n'


def test_one_column_csv_keeps_its_null_rows() -> None:
    """An empty line is skipped by CSV readers (astropy, pandas): a one-column NULL is
    written as an empty string instead, so the row stays."""
    out, _ = write("csv", [(1,), (None,), (3,)], columns=[ResultColumn("n", "int")])
    assert out == b'n\r\n1\r\n""\r\n3\r\n'
    from astropy.table import Table

    assert len(Table.read(out.decode(), format="csv")) == 3


def test_tsv_has_one_line_per_row() -> None:
    rows = sample.rows()
    out, _ = write("tsv", rows)
    lines = out.decode().split("\n")
    assert lines[-1] == "" and len(lines) == len(rows) + 2
    assert lines[0].split("\t")[0] == "flag"
    for row, line in zip(rows, lines[1:-1], strict=True):
        cells = line.split("\t")
        assert len(cells) == len(sample.COLUMNS)
        for kind, value, cell in zip(KINDS, row, cells, strict=True):
            if kind != "geo" or value is None:
                assert cell == _text_expected(kind, value, True)


def test_fits_binary_table() -> None:
    rows = sample.rows()
    out, info = write("fits", rows, maxrec=len(rows) - 1)
    assert len(out) % 2880 == 0
    with fits.open(io.BytesIO(out)) as hdus:
        hdus.verify("exception")
        table = hdus[1]
        assert table.header["NAXIS2"] == len(rows) - 1
        data = table.data
        assert [c.name for c in table.columns] == [c.name for c in sample.COLUMNS]
        assert table.columns["dbl"].unit == "deg"
        assert "OVERFLOW" in str(table.header["COMMENT"])
        for r, row in enumerate(rows[:-1]):
            for c, (kind, value) in enumerate(zip(KINDS, row, strict=True)):
                column = table.columns[c]
                got = data.field(c)[r]
                if value is None:
                    if kind in ("short", "int", "long"):
                        assert got == column.null
                    elif kind in ("double", "float"):
                        assert math.isnan(got)
                    elif kind in ("char", "uni", "ts"):
                        assert got == ""
                    elif kind == "geo":
                        assert len(got) == 0
                    continue
                if kind == "geo":
                    np.testing.assert_allclose(got, sample.degrees(value), rtol=1e-15)
                elif kind == "ts":
                    assert got == sample.expected_text(value)
                elif kind in ("char", "uni"):
                    assert got == value.encode("ascii", "replace").decode().rstrip()
                elif kind == "float":
                    assert np.float32(got) == np.float32(value)
                else:
                    assert got == value
    assert info.overflow


def test_large_batches_stay_exact() -> None:
    """Many rows with ragged strings and polygons in big batches, against astropy."""
    rng = np.random.default_rng(7)
    columns = [ResultColumn("s", "char", "*"), ResultColumn("x", "double"),
               ResultColumn("p", "double", "*", "polygon"), ResultColumn("k", "long")]
    rows = []
    for i in range(5000):
        vertices = int(rng.integers(3, 9))
        poly = "{" + ",".join(f"({rng.uniform(0, 6.28)!r} , {rng.uniform(-1.5, 1.5)!r})"
                              for _ in range(vertices)) + "}"
        rows.append(("x" * int(rng.integers(0, 40)) if i % 11 else None,
                     float(rng.normal()), poly if i % 13 else None, i if i % 17 else None))
    out, _ = write("votable/b2", rows, batch=1000, columns=columns)
    array = parse(io.BytesIO(out)).get_first_table().array
    for i, (s, x, p, k) in enumerate(rows):
        assert array["s"][i] == (s or "")
        assert array["x"][i] == x
        if p is None:
            assert len(array["p"][i]) == 0
        else:
            # Random values lie near a rounding tie often enough that the last 1e-10
            # step may go either way; every value must still lie on the 1e-10 grid.
            got = np.asarray(array["p"][i], dtype=float)
            np.testing.assert_allclose(got, sample.degrees(p), rtol=0, atol=1.01e-10)
            assert np.array_equal(np.round(got, 10), got)
        assert (array["k"][i] == k) if k is not None else bool(array["k"].mask[i])


def test_unknown_datatype_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        write("votable", [(1,)], columns=[ResultColumn("c", "floatComplex")])


def test_query_with_illegal_xml_characters_is_cleaned() -> None:
    out, _ = write("votable/td", sample.rows(1), query="SELECT '\x00\x07' FROM t")
    root = etree.fromstring(out)
    queries = [i for i in root.iter(f"{VOT}INFO") if i.get("name") == "QUERY"]
    assert queries[0].get("value") == "SELECT '\ufffd\ufffd' FROM t"


def test_prefetch_gives_the_same_document_and_closes_its_source() -> None:
    from vo_service.serialize.results import prefetch

    rows = sample.rows(30)
    plain, _ = write("votable/b2", rows, batch=4)
    batches = iter([rows[i:i + 4] for i in range(0, len(rows), 4)])
    fetched = b"".join(stream_result(resolve_format("votable/b2"), sample.COLUMNS,
                                     prefetch(batches), maxrec=None,
                                     info=ResultInfo(query="SELECT * FROM t WHERE a < 1 & b > 2",
                                                     infos=[("request", "doQuery")])))
    assert fetched == plain
    closed: list[bool] = []
    cut = b"".join(stream_result(resolve_format("votable/b2"), sample.COLUMNS,
                                 prefetch(sample.failing_batches(rows, closed)), maxrec=4,
                                 info=ResultInfo()))
    assert b"OVERFLOW" in cut and closed == [True]
    failed_info = ResultInfo()
    failed = b"".join(stream_result(resolve_format("votable/td"), sample.COLUMNS,
                                    prefetch(sample.failing_batches(rows, [])), maxrec=None,
                                    info=failed_info))
    assert b'value="ERROR"' in failed and failed_info.rows == 5


def test_bad_value_in_a_later_batch_keeps_whole_rows_only() -> None:
    columns = [ResultColumn("k", "int"), ResultColumn("p", "double", "2", "point")]
    batches = iter([[(1, "(0.1 , 0.2)"), (2, "(0.3 , 0.4)")], [(3, "(oops)")]])
    info = ResultInfo()
    out = b"".join(stream_result(resolve_format("votable/b2"), columns, batches, maxrec=None,
                                 info=info))
    root = validate(out)
    assert root.findall(f".//{VOT}INFO")[-1].get("value") == "ERROR"
    array = parse(io.BytesIO(out)).get_first_table().array
    assert list(array["k"]) == [1, 2] and info.rows == 2


@pytest.mark.parametrize("fmt", ["votable/b2", "csv"])
def test_memory_stays_flat_while_streaming(fmt: str) -> None:
    """Peak traced memory is bounded by a batch, not by the result size."""
    import tracemalloc

    block = sample.rows(298)  # 300 rows per batch, reused: only the writer allocates

    def batches(count: int) -> Iterator[list[tuple[Any, ...]]]:
        for _ in range(count):
            yield block

    def peak(count: int) -> tuple[int, int]:
        tracemalloc.start()
        try:
            total = 0
            for chunk in stream_result(resolve_format(fmt), sample.COLUMNS, batches(count),
                                       maxrec=None, info=ResultInfo()):
                total += len(chunk)
            return tracemalloc.get_traced_memory()[1], total
        finally:
            tracemalloc.stop()

    small_peak, small_total = peak(3)
    big_peak, big_total = peak(40)
    assert big_total > 10 * small_total
    assert big_peak < 1.5 * small_peak + 1_000_000
