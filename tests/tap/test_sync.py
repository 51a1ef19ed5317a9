"""TAP sync against the running service with real clients (pyvo, astroquery, httpx)."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
import pyvo
from astropy.io.votable import parse_single_table
from astropy.table import Table

from tests.conftest import fetch
from tests.xsd import validate

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"


def _public_count(database):
    """Rows anonymous may see, computed independently from the stored columns."""
    return fetch(
        database.owner_dsn,
        "SELECT count(*) FROM ivoa.obscore WHERE obs_release_date IS NOT NULL AND "
        "obs_release_date::date <= ((now() AT TIME ZONE 'UTC') - interval '20 hours')::date",
    )[0][0]


def test_pyvo_sync_count_sees_only_public_rows(server, archive):
    service = pyvo.dal.TAPService(server.tap_url)
    result = service.search("SELECT COUNT(*) AS n FROM ivoa.obscore")
    total = fetch(server.database.owner_dsn, "SELECT count(*) FROM ivoa.obscore")[0][0]
    public = _public_count(server.database)
    assert 0 < public < total
    assert int(result["n"][0]) == public


def test_pyvo_sync_columns_carry_metadata(server, archive):
    service = pyvo.dal.TAPService(server.tap_url)
    result = service.search(
        "SELECT TOP 5 obs_publisher_did, s_ra, s_dec, s_region, t_min, obs_release_date "
        "FROM ivoa.obscore ORDER BY t_min")
    table = result.to_table()
    assert len(table) == 5
    assert str(table["s_ra"].unit) == "deg"
    field = result.fieldname_with_ucd("pos.eq.ra")
    assert field == "s_ra"
    assert all(d.startswith("ivo://") for d in table["obs_publisher_did"])
    assert list(table["t_min"]) == sorted(table["t_min"])


def test_cone_matches_astropy(server, archive):
    """CONTAINS(POINT, CIRCLE) against an independent astropy separation."""
    from astropy.coordinates import SkyCoord

    rows = fetch(server.database.owner_dsn,
                       "SELECT obs_publisher_did, s_ra, s_dec FROM ivoa.obscore "
                       "WHERE s_ra IS NOT NULL AND obs_release_date::date <= "
                       "((now() AT TIME ZONE 'UTC') - interval '20 hours')::date")
    ra0, dec0 = rows[0][1], rows[0][2]
    radius = 20.0
    coords = SkyCoord([r[1] for r in rows], [r[2] for r in rows], unit="deg")
    separation = coords.separation(SkyCoord(ra0, dec0, unit="deg")).deg
    expected = {r[0] for r, sep in zip(rows, separation, strict=True) if sep < radius}
    service = pyvo.dal.TAPService(server.tap_url)
    result = service.search(
        "SELECT obs_publisher_did FROM ivoa.obscore WHERE "
        f"1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra0}, {dec0}, {radius}))")
    assert set(result.to_table()["obs_publisher_did"]) == expected


def test_maxrec_overflow_is_honest(server, archive):
    public = _public_count(server.database)
    service = pyvo.dal.TAPService(server.tap_url)
    cut = service.search("SELECT obs_id FROM ivoa.obscore", maxrec=5)
    assert len(cut) == 5
    assert cut.query_status == "OVERFLOW"
    exact = service.search("SELECT obs_id FROM ivoa.obscore", maxrec=public)
    assert len(exact) == public
    assert exact.query_status == "OK"


def test_maxrec_zero_returns_metadata_only(server, archive):
    reply = httpx.get(f"{server.tap_url}/sync", params={
        "LANG": "ADQL", "QUERY": "SELECT obs_id, s_ra FROM ivoa.obscore", "MAXREC": "0"})
    root = validate(reply.content)
    assert [f.get("name") for f in root.iter(f"{VOT}FIELD")] == ["obs_id", "s_ra"]
    assert not list(root.iter(f"{VOT}TR"))


@pytest.mark.parametrize("fmt", ["votable", "votable/td", "votable/b",
                                 "application/x-votable+xml;serialization=TABLEDATA"])
def test_votable_serializations_validate_and_agree(server, archive, fmt):
    query = ("SELECT TOP 20 obs_id, s_ra, s_dec, t_min, access_estsize, target_name "
             "FROM ivoa.obscore ORDER BY obs_id")
    reply = httpx.post(f"{server.tap_url}/sync", data={
        "lang": "ADQL", "query": query, "responseformat": fmt})
    assert reply.status_code == 200
    validate(reply.content)
    table = parse_single_table(io.BytesIO(reply.content)).to_table()
    reference = parse_single_table(io.BytesIO(httpx.post(f"{server.tap_url}/sync", data={
        "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "votable/td"}).content)).to_table()
    assert list(table["obs_id"]) == list(reference["obs_id"])
    np.testing.assert_allclose(np.asarray(table["s_ra"], float),
                               np.asarray(reference["s_ra"], float))


def test_csv_and_tsv(server, archive):
    query = "SELECT TOP 7 obs_id, s_ra FROM ivoa.obscore ORDER BY obs_id"
    for fmt, delimiter in (("csv", ","), ("tsv", "\t")):
        reply = httpx.get(f"{server.tap_url}/sync", params={
            "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": fmt})
        assert reply.status_code == 200
        table = Table.read(reply.text, format="ascii.csv", delimiter=delimiter)
        assert len(table) == 7 and table.colnames == ["obs_id", "s_ra"]


def test_fits_output(server, archive):
    from astropy.io import fits

    reply = httpx.get(f"{server.tap_url}/sync", params={
        "LANG": "ADQL", "QUERY": "SELECT TOP 9 obs_id, s_ra, t_min FROM ivoa.obscore",
        "RESPONSEFORMAT": "fits"})
    assert reply.status_code == 200
    with fits.open(io.BytesIO(reply.content)) as hdus:
        assert len(hdus[1].data) == 9
        assert hdus[1].columns.names == ["obs_id", "s_ra", "t_min"]


@pytest.mark.parametrize(("params", "message"), [
    ({"QUERY": "SELECT * FROM ivoa.obscore"}, "LANG"),
    ({"LANG": "SQL", "QUERY": "SELECT 1"}, "LANG=SQL"),
    ({"LANG": "ADQL"}, "QUERY"),
    ({"LANG": "ADQL", "QUERY": "SELECT nothing FROM ivoa.obscore"}, "line 1, column 8"),
    ({"LANG": "ADQL", "QUERY": "SELECT * FROM pg_catalog.pg_class"}, "pg_class"),
    ({"LANG": "ADQL", "QUERY": "SELECT pg_sleep(10) FROM ivoa.obscore"}, "pg_sleep"),
    ({"LANG": "ADQL", "QUERY": "SELECT 1 FROM ivoa.obscore; DROP TABLE ivoa.obscore"}, ";"),
    ({"LANG": "ADQL", "QUERY": "SELECT owner_ids FROM ivoa.obscore"}, "owner_ids"),
    ({"LANG": "ADQL", "QUERY": "SELECT obs_id FROM ivoa.obscore", "MAXREC": "many"},
     "MAXREC"),
    ({"LANG": "ADQL", "QUERY": "SELECT obs_id FROM ivoa.obscore", "RESPONSEFORMAT": "pdf"},
     "pdf"),
    ({"LANG": "ADQL", "QUERY": "SELECT 1/0 AS x FROM ivoa.obscore"}, "division by zero"),
    ({"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,ftp://x/y"},
     "only http"),
    ({"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"},
     "no multipart file"),
])
def test_bad_requests_get_dali_errors(server, archive, params, message):
    reply = httpx.get(f"{server.tap_url}/sync", params=params)
    assert reply.status_code == 400, reply.text
    root = validate(reply.content)
    info = root.find(f".//{VOT}INFO[@name='QUERY_STATUS']")
    assert info is not None and info.get("value") == "ERROR"
    assert message in (info.text or ""), info.text


def test_parameter_names_are_case_insensitive(server, archive):
    reply = httpx.get(f"{server.tap_url}/sync", params={
        "lAnG": "ADQL", "qUeRy": "SELECT TOP 1 obs_id FROM ivoa.obscore",
        "ResponseFormat": "csv"})
    assert reply.status_code == 200
    assert reply.text.splitlines()[0] == "obs_id"


def test_upload_crossmatch_with_pyvo(server, archive):
    rows = fetch(server.database.owner_dsn,
                       "SELECT s_ra, s_dec FROM ivoa.obscore WHERE s_ra IS NOT NULL AND "
                       "data_rights = 'public' ORDER BY obs_id LIMIT 3")
    mine = Table(rows=[(i, ra, dec) for i, (ra, dec) in enumerate(rows)],
                 names=("id", "ra", "dec"))
    service = pyvo.dal.TAPService(server.tap_url)
    result = service.search(
        "SELECT m.id, o.obs_id FROM TAP_UPLOAD.mine AS m JOIN ivoa.obscore AS o "
        "ON DISTANCE(POINT('ICRS', m.ra, m.dec), POINT('ICRS', o.s_ra, o.s_dec)) < 1.0/3600",
        uploads={"mine": mine})
    assert set(result.to_table()["id"]) == {0, 1, 2}


def test_tables_through_pyvo(server, archive):
    service = pyvo.dal.TAPService(server.tap_url)
    names = {t.name for t in service.tables}
    assert {"ivoa.obscore", "lick.files"} <= names
    obscore = service.tables["ivoa.obscore"]
    assert "s_region" in {c.name for c in obscore.columns}


def test_astroquery_tapplus_sync(server, archive):
    from astroquery.utils.tap.core import TapPlus

    tap = TapPlus(url=server.tap_url, verbose=False)
    job = tap.launch_job("SELECT TOP 4 obs_id, s_ra FROM ivoa.obscore ORDER BY obs_id")
    table = job.get_results()
    assert len(table) == 4


def test_upload_by_http_url(server, archive):
    """DALI: http uploads must work; the table comes from this very service."""
    from urllib.parse import urlencode

    source = server.tap_url + "/sync?" + urlencode({
        "LANG": "ADQL", "QUERY": "SELECT TOP 3 obs_id, s_ra AS ra, s_dec AS dec "
        "FROM ivoa.obscore WHERE s_ra IS NOT NULL ORDER BY obs_id"})
    reply = httpx.get(f"{server.tap_url}/sync", params={
        "LANG": "ADQL", "UPLOAD": f"src,{source}", "RESPONSEFORMAT": "csv",
        "QUERY": "SELECT s.obs_id FROM TAP_UPLOAD.src AS s JOIN ivoa.obscore AS o "
                 "ON o.obs_id = s.obs_id ORDER BY s.obs_id"})
    assert reply.status_code == 200, reply.text
    assert len(reply.text.splitlines()) == 4


def test_private_upload_hosts_are_refused_by_default():
    from vo_service.errors import UsageFault
    from vo_service.services.fetch import fetch_upload

    with pytest.raises(UsageFault, match="private network"):
        fetch_upload("http://127.0.0.1:9/t.xml", max_bytes=100, timeout=1,
                     allow_private=False)


def test_binary2_written_by_postgres_equals_the_general_writer(server, archive):
    """BINARY2 of scalar columns is built by PostgreSQL (COPY); BINARY by Python.
    Both must decode to the same values and the same NULLs."""
    query = ("SELECT f.*, CAST(o.calib_level AS SMALLINT) AS short_level, "
             "CAST(o.s_ra AS REAL) AS real_ra, o.em_min, o.obs_release_date, o.t_xel "
             "FROM lick.files AS f JOIN ivoa.obscore AS o "
             "ON f.obs_publisher_did = o.obs_publisher_did ORDER BY f.path")
    tables = {}
    for fmt in ("votable/b2", "votable/b"):
        reply = httpx.get(f"{server.tap_url}/sync", params={
            "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": fmt, "MAXREC": "100000"})
        assert reply.status_code == 200
        validate(reply.content)
        tables[fmt] = parse_single_table(io.BytesIO(reply.content)).to_table()
    fast, general = tables["votable/b2"], tables["votable/b"]
    assert fast.colnames == general.colnames and len(fast) == len(general) > 100
    _assert_same_values(fast, general)


def _assert_same_values(fast, general) -> None:  # type: ignore[no-untyped-def]
    """Two astropy tables hold the same nulls and, printed, the same values."""
    for name in general.colnames:
        a, b = fast[name], general[name]
        assert list(np.ma.getmaskarray(a)) == list(np.ma.getmaskarray(b)), name
        keep = ~np.ma.getmaskarray(a)
        assert [str(x) for x in np.asarray(a)[keep]] == \
            [str(x) for x in np.asarray(b)[keep]], name


def test_binary2_overflow_and_maxrec_from_postgres(server, archive):
    reply = httpx.get(f"{server.tap_url}/sync", params={
        "LANG": "ADQL", "QUERY": "SELECT obs_id FROM lick.files JOIN ivoa.obscore "
        "USING (obs_publisher_did)", "MAXREC": "7"})
    root = validate(reply.content)
    infos = [i.get("value") for i in root.iter(f"{VOT}INFO") if i.get("name") == "QUERY_STATUS"]
    assert infos == ["OK", "OVERFLOW"]
    assert len(parse_single_table(io.BytesIO(reply.content)).to_table()) == 7


def test_binary2_non_ascii_text_matches_the_general_writer(server, archive):
    query = "SELECT TOP 2 'Łódź façade' AS town, obs_id FROM ivoa.obscore ORDER BY obs_id"
    values = {}
    for fmt in ("votable/b2", "votable/b"):
        reply = httpx.get(f"{server.tap_url}/sync", params={
            "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": fmt})
        assert reply.status_code == 200
        values[fmt] = list(parse_single_table(io.BytesIO(reply.content)).to_table()["town"])
    assert values["votable/b2"] == values["votable/b"] == ["??d? fa?ade"] * 2


EDGE_VALUES = (
    b'<VOTABLE><RESOURCE><TABLE>'
    b'<FIELD name="k" datatype="int"/><FIELD name="flag" datatype="boolean"/>'
    b'<FIELD name="small" datatype="short"/><FIELD name="big" datatype="long"/>'
    b'<FIELD name="single" datatype="float"/><FIELD name="x" datatype="double"/>'
    b'<FIELD name="name" datatype="char" arraysize="*"/>'
    b'<FIELD name="note" datatype="unicodeChar" arraysize="*"/>'
    b'<FIELD name="at" datatype="char" arraysize="*" xtype="timestamp"/>'
    b"<DATA><TABLEDATA>"
    b"<TR><TD>1</TD><TD>T</TD><TD>-3</TD><TD>9007199254740993</TD><TD>1.5</TD>"
    b"<TD>600</TD><TD>plain</TD><TD>plain</TD><TD>2020-01-02T03:04:05</TD></TR>"
    b"<TR><TD>2</TD><TD>F</TD><TD>0</TD><TD>0</TD><TD>NaN</TD><TD>NaN</TD>"
    b"<TD>a,b &quot;c&quot;</TD><TD>line&#10;break</TD><TD>1999-12-31T23:59:59.5</TD></TR>"
    b"<TR><TD>3</TD><TD/><TD/><TD/><TD/><TD/><TD/><TD/><TD/></TR>"
    b"<TR><TD>4</TD><TD>T</TD><TD>7</TD><TD>-1</TD><TD>+Inf</TD><TD>-Inf</TD>"
    b"<TD>back\\slash</TD><TD>\xc5\x81\xc3\xb3d\xc5\xba</TD><TD>2000-01-01T00:00:00</TD></TR>"
    b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>")


def _number_or_text(cell: str) -> object:
    try:
        return cell if cell in ("NaN", "") else float(cell)
    except ValueError:
        return cell


def _sync_with_upload(server, query: str, fmt: str) -> httpx.Response:
    reply = httpx.post(f"{server.tap_url}/sync", data={
        "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": fmt, "UPLOAD": "t,param:t"},
        files={"t": ("t.xml", EDGE_VALUES, "application/x-votable+xml")})
    assert reply.status_code == 200, reply.text
    return reply


def test_edge_values_written_by_postgres_equal_the_general_writer(server, archive):
    """NULL of every type, NaN, infinities, CSV specials, non-ASCII text: the rows
    PostgreSQL writes (BINARY2, CSV) hold what the general writers write (BINARY,
    CSV with a geometry column added)."""
    import csv

    query = "SELECT t.* FROM TAP_UPLOAD.t AS t ORDER BY k"
    tables = {}
    for fmt in ("votable/b2", "votable/b"):
        content = _sync_with_upload(server, query, fmt).content
        validate(content)
        tables[fmt] = parse_single_table(io.BytesIO(content)).to_table()
    fast, general = tables["votable/b2"], tables["votable/b"]
    assert len(fast) == len(general) == 4
    _assert_same_values(fast, general)
    assert list(np.ma.getmaskarray(fast["x"])) == [False, True, True, False]  # NaN is NULL
    # Readers mask NaN anyway; BINARY2's own null flags must say it too (both writers).
    for select in ("single, x", "single, x, POINT('ICRS', 1, 2) AS p"):
        content = _sync_with_upload(
            server, f"SELECT {select} FROM TAP_UPLOAD.t WHERE k = 2", "votable/b2").content
        stream = validate(content).find(f".//{VOT}STREAM")
        assert stream is not None and base64.b64decode(stream.text or "")[0] == 0b1100_0000
    assert str(fast["name"][3]) == "back\\slash" and str(fast["note"][3]) == "??d?"

    texts = {}
    for name, select in (("postgres", query),
                         ("python", "SELECT t.*, POINT('ICRS', 1, 2) AS p "
                                    "FROM TAP_UPLOAD.t AS t ORDER BY k")):
        text = _sync_with_upload(server, select, "csv").text
        assert text.endswith("\r\n") and text.count("\r\n") == 5  # header and 4 rows
        texts[name] = list(csv.reader(io.StringIO(text, newline="")))
    fast_rows, general_rows = texts["postgres"], [row[:-1] for row in texts["python"]]
    assert len(fast_rows) == len(general_rows)
    for row_fast, row_general in zip(fast_rows, general_rows, strict=True):
        # PostgreSQL prints an integral double as '600', Python as '600.0'.
        assert [_number_or_text(c) for c in row_fast] == \
            [_number_or_text(c) for c in row_general], row_fast
    assert texts["postgres"][2][1:7] == ["false", "0", "0", "NaN", "NaN", 'a,b "c"']
    assert texts["postgres"][4][4:8] == ["+Inf", "-Inf", "back\\slash", "\u0141\u00f3d\u017a"]


def test_csv_written_by_postgres_equals_the_general_writer(server, archive):
    """Scalar-only CSV comes from PostgreSQL (COPY); adding a geometry column sends the
    same rows through the Python writer: the common columns must match to the byte."""
    import csv

    columns = ("f.path, f.night, f.exptime, f.airmass, f.file_size, f.header, "
               "f.ingest_flags, o.t_min, o.obs_release_date, 'a,b \"c\"' AS tricky, "
               "CAST(o.s_ra AS REAL) AS real_ra")
    base = (" FROM lick.files AS f JOIN ivoa.obscore AS o "
            "ON f.obs_publisher_did = o.obs_publisher_did ORDER BY f.path")
    texts = {}
    for name, query in (("postgres", f"SELECT {columns}{base}"),
                        ("python", f"SELECT {columns}, o.s_region{base}")):
        reply = httpx.get(f"{server.tap_url}/sync", params={
            "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv", "MAXREC": "100000"})
        assert reply.status_code == 200
        assert reply.text.endswith("\r\n")
        texts[name] = list(csv.reader(io.StringIO(reply.text, newline="")))
    fast, general = texts["postgres"], [row[:-1] for row in texts["python"]]
    assert len(fast) > 100 and len(fast) == len(general)

    def same(a: str, b: str) -> bool:
        # PostgreSQL prints an integral double as '600', Python as '600.0'.
        try:
            return float(a) == float(b)
        except ValueError:
            return a == b

    for row_fast, row_general in zip(fast, general, strict=True):
        assert len(row_fast) == len(row_general)
        assert all(same(a, b) for a, b in zip(row_fast, row_general, strict=True)), row_fast
