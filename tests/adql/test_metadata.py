"""Metadata rules: published columns only, uploads, identifier case, limits, params,
the capability list."""

from __future__ import annotations

import re

import psycopg2
import pytest

from tap_schema.model import Column
from vo_service.adql import AdqlError, Metadata, UploadTable, translate
from vo_service.adql.features import LANGUAGE_FEATURES
from vo_service.adql.udfs import REGISTRY

UPLOAD = UploadTable(
    adql_name="TAP_UPLOAD.mine", sql_name="pg_temp.tap_upload_mine",
    columns=(Column("ra", "double", "", unit="deg"), Column("dec", "double", "", unit="deg"),
             Column("Name", "char", "", arraysize="*")))


def test_storage_only_columns_are_invisible(metadata) -> None:
    t = translate("SELECT * FROM ivoa.obscore", metadata)
    assert "owner_ids" not in t.sql and "owner_ids" not in {c.name for c in t.columns}
    t = translate("SELECT * FROM lick.files", metadata)
    assert not {"file_id", "owner_ids", "ingested_at"} & {c.name for c in t.columns}


def test_upload_cross_match(adql_db) -> None:
    metadata = Metadata.from_declaration([UPLOAD])
    t = translate("SELECT u.Name, o.obs_id FROM TAP_UPLOAD.mine AS u JOIN ivoa.obscore AS o "
                  "ON DISTANCE(u.ra, u.dec, o.s_ra, o.s_dec) < 0.5 WHERE u.\"Name\" = 'x'",
                  metadata)
    assert "pg_temp.tap_upload_mine AS t0" in t.sql
    conn = psycopg2.connect(adql_db.query_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ WRITE")  # uploads: temp tables only
            cur.execute('CREATE TEMP TABLE tap_upload_mine (ra double precision, '
                        'dec double precision, "Name" text)')
            cur.execute("INSERT INTO tap_upload_mine VALUES (10, 20, 'x'), (200, -80, 'y')")
            cur.execute(t.sql, t.params)
            got = sorted(cur.fetchall())
            cur.execute("SELECT 'x', obs_id FROM ivoa.obscore WHERE degrees(spoint(radians(10),"
                        " radians(20)) <-> spoint(radians(s_ra), radians(s_dec))) < 0.5")
            want = sorted(cur.fetchall())
    finally:
        conn.close()
    assert got == want and got
    assert [c.name for c in t.columns] == ["Name", "obs_id"]


def test_limit_caps_top(metadata) -> None:
    t = translate("SELECT TOP 50 obs_id FROM ivoa.obscore", metadata, limit=11)
    assert t.sql.endswith("LIMIT %(p0)s") and t.params == {"p0": 11}
    t = translate("SELECT TOP 5 obs_id FROM ivoa.obscore", metadata, limit=11)
    assert t.params == {"p0": 5}
    t = translate("SELECT obs_id FROM ivoa.obscore UNION SELECT obs_id FROM ivoa.obscore",
                  metadata, limit=3)
    assert t.sql.endswith("LIMIT %(p0)s") and t.params == {"p0": 3}


def test_literals_are_bound_never_pasted(metadata) -> None:
    t = translate("SELECT obs_id, 'secret''; DROP TABLE x; --' AS s FROM ivoa.obscore WHERE "
                  "target_name = 'Robert''); --' AND s_ra > 12.5 AND s_dec < 77", metadata)
    assert "secret" not in t.sql and "Robert" not in t.sql
    assert not re.search(r"\b(12\.5|77)\b", t.sql)
    assert "Robert'); --" in t.params.values()


def test_user_names_do_not_reach_the_sql(metadata) -> None:
    t = translate('SELECT s_ra AS "x"" FROM pg_class --" FROM ivoa.obscore AS "a""b"', metadata)
    assert "pg_class" not in t.sql and 'a"b' not in t.sql
    assert t.columns[0].name == 'x" FROM pg_class --'


def test_output_names_are_unique_and_follow_adql(metadata) -> None:
    t = translate("SELECT o.obs_id, f.obs_publisher_did, o.obs_publisher_did, COUNT(*), "
                  "s_ra + 1, s_ra AS \"Ra\", MAX(s_dec) FROM ivoa.obscore AS o JOIN lick.files "
                  "AS f USING (obs_publisher_did) GROUP BY o.obs_id, f.obs_publisher_did, "
                  "o.obs_publisher_did, s_ra", metadata)
    assert [c.name for c in t.columns] == [
        "obs_id", "obs_publisher_did", "obs_publisher_did_2", "count", "expr", "Ra", "max"]
    assert t.columns[5].unit == "deg" and t.columns[5].ucd == "pos.eq.ra"


def test_error_str_has_position(metadata) -> None:
    with pytest.raises(AdqlError) as info:
        translate("SELECT\n  nope FROM ivoa.obscore", metadata)
    assert (info.value.line, info.value.column) == (2, 3)
    assert str(info.value).endswith("(line 2, column 3)")


def test_language_features() -> None:
    types = {f.type for f in LANGUAGE_FEATURES}
    assert "ivo://ivoa.net/std/TAPRegExt#features-adqlgeo" in types
    assert {"ivo://ivoa.net/std/TAPRegExt#features-adql-" + k for k in (
        "string", "sets", "common-table", "type", "conditional", "unit", "offset")} <= types
    forms = {f.form for f in LANGUAGE_FEATURES}
    assert {"POINT", "CIRCLE", "BOX", "POLYGON", "DISTANCE", "CONTAINS", "INTERSECTS", "AREA",
            "CENTROID", "COORD1", "COORD2", "COORDSYS", "LOWER", "UPPER", "ILIKE", "UNION",
            "EXCEPT", "INTERSECT", "WITH", "CAST", "COALESCE", "IN_UNIT", "OFFSET"} <= forms
    assert "REGION" in forms
    signature = re.compile(r"[a-z][a-z0-9_]*\((?:[a-z][a-z0-9_]* [A-Z]+(?:, )?)+\) -> [A-Z]+")
    udfs = [f for f in LANGUAGE_FEATURES if f.type.endswith("#features-udf")]
    assert len(udfs) == len(REGISTRY) >= 5
    for feature in udfs:
        assert signature.fullmatch(feature.form), feature.form
        assert feature.description


def test_long_chains_and_deep_nesting(metadata) -> None:
    ors = " OR ".join(f"s_ra = {i}" for i in range(2000))
    assert translate(f"SELECT obs_id FROM ivoa.obscore WHERE {ors}", metadata).sql.count(
        " OR ") == 1999
    assert translate("SELECT " + " + ".join(["s_ra"] * 2000) + " FROM ivoa.obscore", metadata)
    with pytest.raises(AdqlError, match="nests more than 100 levels") as info:
        translate("SELECT " + "ABS(" * 2000 + "1" + ")" * 2000 + " FROM ivoa.obscore", metadata)
    # The query is the first level, so the 100th ABS( (column 8 + 4 * 99) is too deep.
    assert (info.value.line, info.value.column) == (1, 8 + 4 * 99)
    t = translate("SELECT " + ", ".join(["s_ra"] * 500) + " FROM ivoa.obscore", metadata)
    assert len({c.name for c in t.columns}) == 500 and t.columns[-1].name == "s_ra_500"
