"""Uploaded VOTables: STILTS (TOPCAT's engine), astropy and our own output, and attacks."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2
import pytest
from astropy.io.votable.tree import Field, Resource, TableElement, VOTableFile
from psycopg2 import sql

from tests.serialize import sample
from vo_service.serialize.formats import resolve_format
from vo_service.serialize.results import ResultInfo, stream_result
from vo_service.serialize.upload import parse_votable

DATA = Path(__file__).resolve().parent.parent / "data" / "serialize"

STILTS_ROWS = [
    (1, "M31 & <core>", 10.684708, 41.26875, 3.44, True, "2019-05-02T03:04:05"),
    (2, "NGC 7000, North America", 314.75, 44.5, None, False, None),
    (3, None, 0.0, -89.99, 12.5, None, "2021-01-01T00:00:00"),
]


@pytest.mark.parametrize("name", ["stilts-tabledata.vot", "stilts-binary.vot",
                                  "stilts-binary2.vot"])
def test_stilts_written_tables(name: str) -> None:
    table = parse_votable((DATA / name).read_bytes())
    assert [c.name for c in table.columns] == ["id", "name", "ra", "dec", "mag", "flag", "seen"]
    assert [c.datatype for c in table.columns] == [
        "short", "char", "double", "double", "float", "boolean", "char"]
    assert [c.storage_type for c in table.columns][:3] == ["smallint", "text", "double precision"]
    assert len(table.rows) == 3
    for got, want in zip(table.rows, STILTS_ROWS, strict=True):
        for g, w in zip(got, want, strict=True):
            if isinstance(w, float):
                assert g == pytest.approx(w, rel=1e-7)
            else:
                assert g == w


def _astropy_votable(fmt: str) -> bytes:
    vot = VOTableFile(version="1.4")
    resource = Resource()
    vot.resources.append(resource)
    table = TableElement(vot)
    resource.tables.append(table)
    table.fields.extend([
        Field(vot, name="Source ID", datatype="long"),
        Field(vot, name="RA", datatype="double", unit="deg"),
        Field(vot, name="select", datatype="char", arraysize="*"),
        Field(vot, name="pos", datatype="double", arraysize="2", xtype="point"),
        Field(vot, name="fluxes", datatype="float", arraysize="*"),
    ])
    table.create_arrays(2)
    table.array[0] = (7, 12.5, "a & b", np.ma.array([10.0, 20.0], mask=[False] * 2),
                      np.ma.array([1.5, 2.5], mask=[False] * 2, dtype=np.float32))
    table.array[1] = (8, 13.5, "", np.ma.array([11.0, -5.0], mask=[False] * 2),
                      np.ma.array([], dtype=np.float32))
    out = io.BytesIO()
    vot.to_xml(out, tabledata_format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["tabledata", "binary", "binary2"])
def test_astropy_written_tables(fmt: str) -> None:
    table = parse_votable(_astropy_votable(fmt))
    names = [c.name for c in table.columns]
    assert names == ["source_id", "ra", "select_", "pos", "fluxes"]  # SELECT is reserved
    pos = table.columns[3]
    assert (pos.xtype, pos.storage_type) == ("point", "spoint")
    assert table.columns[4].storage_type == "real[]"
    assert table.rows[0][:4] == (7, 12.5, "a & b", "(10d,20d)")
    assert table.rows[0][4] == [1.5, 2.5]
    assert table.rows[1][2] in ("", None)


@pytest.mark.parametrize("fmt", ["votable/td", "votable/b", "votable/b2"])
def test_our_own_output_reads_back(fmt: str) -> None:
    rows = sample.rows()
    out = b"".join(stream_result(resolve_format(fmt), sample.COLUMNS, iter([rows]),
                                 maxrec=None, info=ResultInfo()))
    table = parse_votable(out)
    assert [c.name for c in table.columns][-1] == "col_1_odd_name"
    assert len(table.rows) == len(rows)
    for got, want in zip(table.rows, rows, strict=True):
        assert got[1:4] == want[1:4]
        if want[6] is not None and "\x01" not in want[6]:
            assert got[6] == want[6].encode("ascii", "replace").decode() \
                if fmt != "votable/td" else want[6]
    assert table.rows[len(rows) - 2] == tuple(
        None if i not in (6, 7, 8, 12) else table.rows[len(rows) - 2][i] for i in range(13))


def test_uploaded_rows_insert_into_a_real_table(database: Any) -> None:
    """The mapped storage types and values (pgSphere literals) are what PostgreSQL takes."""
    rows = sample.rows()
    out = b"".join(stream_result(resolve_format("votable/b2"), sample.COLUMNS, iter([rows]),
                                 maxrec=None, info=ResultInfo()))
    table = parse_votable(out)
    conn = psycopg2.connect(database.owner_dsn)
    try:
        with conn.cursor() as cur:
            columns = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.storage_type))
                for c in table.columns)
            cur.execute(sql.SQL("CREATE TEMP TABLE upload_probe ({})").format(columns))
            marks = sql.SQL(", ").join(sql.Placeholder() * len(table.columns))
            cur.executemany(sql.SQL("INSERT INTO upload_probe VALUES ({})").format(marks),
                            table.rows)
            cur.execute("SELECT degrees(long(pos)), degrees(lat(pos)), degrees(radius(circ)),"
                        " npoints(region_) FROM upload_probe")
            got = cur.fetchall()
    finally:
        conn.rollback()
        conn.close()
    ra, dec = sample.degrees(sample.POINT)
    assert got[0][0] == pytest.approx(ra) and got[0][1] == pytest.approx(dec)
    assert got[0][2] == pytest.approx(sample.degrees(sample.CIRCLE)[2])
    assert got[0][3] == 3
    assert got[len(rows) - 2] == (None, None, None, None)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="char" arraysize="*"/>
<DATA><TABLEDATA><TR><TD>&lol9;</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"""


def _external_entity(tmp_path: Path) -> bytes:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    return f"""<?xml version="1.0"?>
<!DOCTYPE v [<!ENTITY xxe SYSTEM "file://{secret}">]>
<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="char" arraysize="*"/>
<DATA><TABLEDATA><TR><TD>&xxe;</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
""".encode()


def test_billion_laughs_is_refused() -> None:
    with pytest.raises(ValueError, match=r"DOCTYPE|amplification"):
        parse_votable(BILLION_LAUGHS)  # libxml2 may stop it first (amplification)


def test_external_entity_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DOCTYPE") as caught:
        parse_votable(_external_entity(tmp_path))
    assert "TOP-SECRET" not in str(caught.value)


def _tabledata(rows: int, field: str = '<FIELD name="a" datatype="int"/>') -> bytes:
    body = "".join(f"<TR><TD>{i}</TD></TR>" for i in range(rows))
    return (f'<VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3" version="1.4"><RESOURCE>'
            f"<TABLE>{field}<DATA><TABLEDATA>{body}</TABLEDATA></DATA></TABLE>"
            f"</RESOURCE></VOTABLE>").encode()


def test_size_and_row_limits() -> None:
    assert len(parse_votable(_tabledata(10), max_rows=10).rows) == 10
    with pytest.raises(ValueError, match="more than 10 rows"):
        parse_votable(_tabledata(11), max_rows=10)
    with pytest.raises(ValueError, match="limit is 100"):
        parse_votable(_tabledata(50), max_bytes=100)
    binary = b"".join(stream_result(resolve_format("votable/b2"), sample.COLUMNS,
                                    iter([sample.rows(20)]), maxrec=None, info=ResultInfo()))
    with pytest.raises(ValueError, match="more than 5 rows"):
        parse_votable(binary, max_rows=5)


def test_huge_text_node_is_refused() -> None:
    """libxml2's own limit (huge_tree=False) stops one giant text node."""
    giant = _tabledata(1).replace(b"<TD>0</TD>", b"<TD>" + b"9" * 11_000_000 + b"</TD>")
    with pytest.raises(ValueError):
        parse_votable(giant, max_bytes=64 * 1024 * 1024)


@pytest.mark.parametrize("document,message", [
    (b"not xml at all", "not well-formed"),
    (b"<html><body>hello</body></html>", "not a VOTable"),
    (b"<VOTABLE><RESOURCE/></VOTABLE>", "no TABLE"),
    (_tabledata(1, '<FIELD name="z" datatype="floatComplex"/>'), "floatComplex"),
    (_tabledata(1, '<FIELD name="z"/>'), "no datatype"),
    (_tabledata(1, '<FIELD name="z" datatype="int" arraysize="x*"/>'), "arraysize"),
    (_tabledata(1).replace(b"<TD>0</TD>", b"<TD>zero</TD>"), "row 1"),
    (_tabledata(1).replace(b"<TD>0</TD>", b"<TD>0</TD><TD>1</TD>"), "2 cells"),
    (b'<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA><BINARY2>'
     b'<STREAM encoding="base64">AAAA%%%</STREAM></BINARY2></DATA></TABLE></RESOURCE>'
     b"</VOTABLE>", "base64"),
    (b'<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA><BINARY2>'
     b'<STREAM encoding="base64">AAAA</STREAM></BINARY2></DATA></TABLE></RESOURCE>'
     b"</VOTABLE>", "ends inside row 1"),
    (b'<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA><BINARY>'
     b'<STREAM href="http://example.org/data.bin"/></BINARY></DATA></TABLE></RESOURCE>'
     b"</VOTABLE>", "remote"),
    (b'<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA><FITS>'
     b'<STREAM href="http://example.org/x.fits"/></FITS></DATA></TABLE></RESOURCE>'
     b"</VOTABLE>", "FITS data"),
])
def test_bad_uploads_say_what_is_wrong(document: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_votable(document)


def test_magic_null_values_and_nan() -> None:
    document = _tabledata(3, '<FIELD name="a" datatype="int"><VALUES null="1"/></FIELD>')
    assert parse_votable(document).rows == [(0,), (None,), (2,)]
    document = (b'<VOTABLE><RESOURCE><TABLE><FIELD name="x" datatype="double"/><DATA>'
                b"<TABLEDATA><TR><TD>NaN</TD></TR><TR><TD>-Inf</TD></TR><TR><TD/></TR>"
                b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>")
    rows = parse_votable(document).rows
    assert math.isnan(rows[0][0]) and rows[1][0] == -math.inf and rows[2][0] is None


def test_column_names_become_legal_lower_case_adql() -> None:
    from vo_service.serialize.upload import adql_name

    taken: set[str] = set()
    names = [adql_name(n, taken) for n in ["RA", "ra", "2MASS id", "select", "Flux (Jy)", "é"]]
    assert names == ["ra", "ra_2", "col_2mass_id", "select_", "flux__jy_", "col__"]
