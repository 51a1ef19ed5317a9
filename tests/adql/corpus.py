"""The ADQL test corpus: queries with hand-written reference SQL, invalid queries
with the expected error position, and grammar cases (after the IVOA lyonetia
validator sets: whitespace, select, from, where, math, aggregation, order by and
the optional features), rewritten for this archive's tables.

Reference SQL is written by hand against the tables, independently of the
translator; the database answers both and the tests compare the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from tap_schema.declaration import OBSCORE, TAP_SCHEMA_TABLES


@dataclass(frozen=True)
class Case:
    adql: str
    reference: str
    ordered: bool = False


@dataclass(frozen=True)
class Invalid:
    adql: str
    line: int | None
    column: int | None
    fragment: str


O = "ivoa.obscore"  # noqa: E741 - short on purpose: the corpus reads like ADQL
F = "lick.files"
PT = "spoint(radians(s_ra), radians(s_dec))"

CASES: list[Case] = [
    # --- select lists, literals, identifiers -----------------------------------
    Case(f"SELECT obs_id FROM {O}", f"SELECT obs_id FROM {O}"),
    Case(f"SELECT * FROM {O}",
         "SELECT " + ", ".join(c.name for c in OBSCORE.published_columns) + f" FROM {O}"),
    Case("select OBS_ID, S_Ra from IVOA.ObsCore", f"SELECT obs_id, s_ra FROM {O}"),
    Case('SELECT "obs_id", "s_ra" FROM "ivoa"."obscore"', f"SELECT obs_id, s_ra FROM {O}"),
    Case(f"SELECT o.obs_id FROM {O} AS o", f"SELECT obs_id FROM {O}"),
    Case(f"SELECT o.obs_id FROM {O} o WHERE o.calib_level = 1", f"SELECT obs_id FROM {O}"),
    Case(f'SELECT "Foo".obs_id FROM {O} AS "Foo"', f"SELECT obs_id FROM {O}"),
    Case(f"SELECT ivoa.obscore.obs_id FROM {O}", f"SELECT obs_id FROM {O}"),
    Case(f"SELECT obscore.obs_id FROM {O}", f"SELECT obs_id FROM {O}"),
    Case(f"SELECT o.* FROM {O} AS o WHERE s_ra < 0", f"SELECT * FROM {O} WHERE false"),
    Case(f"SELECT 'blabla bla', 42, -2, 3.14, 10e-5, 10E3 FROM {O} WHERE obs_id = '2018-01/0001'",
         "SELECT 'blabla bla', 42, -2, 3.14, 10e-5::float8, 10E3::float8"),
    Case(f"SELECT 'Earth''s moon' AS s FROM {O} WHERE obs_id = '2018-01/0001'",
         "SELECT 'Earth''s moon'"),
    Case(f"SELECT 'qua' -- it's a comment\n  'tsch' FROM {O} WHERE obs_id = '2018-01/'\n"
         "'0001'", "SELECT 'quatsch'"),
    Case(f"SELECT obs_id || '/' || instrument_name FROM {O}",
         f"SELECT obs_id || '/' || instrument_name FROM {O}"),
    Case(f"SELECT obs_id || calib_level || 2.5 || obs_release_date FROM {O}",
         f"SELECT obs_id || '1' || '2.5' || '2020-01-01 00:00:00' FROM {O}"),
    Case(f"SELECT s_ra * 3.14, 1 + 2 - 6 / 2, s_dec / 2 FROM {O}",
         f"SELECT s_ra * 3.14, 0, s_dec / 2 FROM {O}"),
    Case(f"SELECT DISTINCT instrument_name FROM {O}",
         f"SELECT DISTINCT instrument_name FROM {O}"),
    Case(f"SELECT ALL instrument_name FROM {O}", f"SELECT instrument_name FROM {O}"),
    Case(f"SELECT TOP 5 obs_id FROM {O} ORDER BY obs_id",
         f"SELECT obs_id FROM {O} ORDER BY obs_id LIMIT 5", ordered=True),
    Case(f"SELECT TOP 0 obs_id FROM {O}", "SELECT 1 WHERE false"),
    Case(f"SELECT DISTINCT TOP 2 instrument_name FROM {O} ORDER BY instrument_name",
         f"SELECT DISTINCT instrument_name FROM {O} ORDER BY 1 LIMIT 2", ordered=True),
    Case(f"SELECT NULL FROM {O} WHERE obs_id = '2018-01/0002'", "SELECT NULL"),
    Case(f"SELECT s_ra AS ra, s_ra AS ra FROM {O}", f"SELECT s_ra, s_ra FROM {O}"),
    Case("-- a comment\nSELECT obs_id -- another\nFROM ivoa.obscore\n",
         f"SELECT obs_id FROM {O}"),
    Case(f"SELECT\tobs_id\r\nFROM\n\n   {O}\n;", f"SELECT obs_id FROM {O}"),
    # --- where ------------------------------------------------------------------
    Case(f"SELECT obs_id FROM {O} WHERE s_dec < 0", f"SELECT obs_id FROM {O} WHERE s_dec < 0"),
    Case(f"SELECT obs_id FROM {O} WHERE s_ra BETWEEN 9 AND 11",
         f"SELECT obs_id FROM {O} WHERE s_ra >= 9 AND s_ra <= 11"),
    Case(f"SELECT obs_id FROM {O} WHERE s_ra NOT BETWEEN 9 AND 11",
         f"SELECT obs_id FROM {O} WHERE s_ra < 9 OR s_ra > 11"),
    Case(f"SELECT obs_id FROM {O} WHERE target_name = 'M31'",
         f"SELECT obs_id FROM {O} WHERE target_name = 'M31'"),
    Case(f"SELECT obs_id FROM {O} WHERE target_name != 'M31'",
         f"SELECT obs_id FROM {O} WHERE target_name <> 'M31'"),
    Case(f"SELECT obs_id FROM {O} WHERE target_name <> 'M31'",
         f"SELECT obs_id FROM {O} WHERE target_name <> 'M31'"),
    Case(f"SELECT obs_id FROM {O} WHERE target_name >= 'M' AND target_name < 'N'",
         f"SELECT obs_id FROM {O} WHERE target_name >= 'M' AND target_name < 'N'"),
    Case(f"SELECT obs_id FROM {O} WHERE target_name LIKE 'M%'",
         f"SELECT obs_id FROM {O} WHERE target_name LIKE 'M%'"),
    Case(f"SELECT obs_id FROM {O} WHERE target_name NOT LIKE '%3_'",
         f"SELECT obs_id FROM {O} WHERE target_name NOT LIKE '%3_'"),
    Case(f"SELECT obs_id FROM {O} WHERE target_name ILIKE 'm31%'",
         f"SELECT obs_id FROM {O} WHERE lower(target_name) LIKE 'm31%'"),
    Case(f"SELECT obs_id FROM {O} WHERE target_name NOT ILIKE 'M%'",
         f"SELECT obs_id FROM {O} WHERE NOT lower(target_name) LIKE 'm%'"),
    Case(f"SELECT obs_id FROM {O} WHERE target_name LIKE '%''%'",
         f"SELECT obs_id FROM {O} WHERE position('''' in target_name) > 0"),
    Case(f"SELECT obs_id FROM {O} WHERE target_name IS NULL",
         f"SELECT obs_id FROM {O} WHERE target_name IS NULL"),
    Case(f"SELECT obs_id FROM {O} WHERE t_exptime IS NOT NULL AND s_fov IS NULL",
         f"SELECT obs_id FROM {O} WHERE t_exptime IS NOT NULL AND s_fov IS NULL"),
    Case(f"SELECT obs_id FROM {O} WHERE instrument_name IN ('ShARCS', 'Kast Red')",
         f"SELECT obs_id FROM {O} WHERE instrument_name = 'ShARCS' OR instrument_name = "
         "'Kast Red'"),
    Case(f"SELECT obs_id FROM {O} WHERE calib_level NOT IN (2, 3)",
         f"SELECT obs_id FROM {O}"),
    Case(f"SELECT obs_id FROM {O} WHERE NOT (s_dec > 0 OR s_ra > 100)",
         f"SELECT obs_id FROM {O} WHERE s_dec <= 0 AND s_ra <= 100"),
    Case(f"SELECT obs_id FROM {O} WHERE (s_dec > 0 AND s_ra > 100) OR t_exptime < 10",
         f"SELECT obs_id FROM {O} WHERE (s_dec > 0 AND s_ra > 100) OR t_exptime < 10"),
    Case(f"SELECT obs_id FROM {O} WHERE (s_dec) > (0)", f"SELECT obs_id FROM {O} WHERE s_dec > 0"),
    Case(f"SELECT obs_id FROM {O} WHERE t_exptime = NULL", "SELECT 1 WHERE false"),
    Case(f"SELECT obs_id FROM {O} WHERE -s_dec > 10",
         f"SELECT obs_id FROM {O} WHERE s_dec < -10"),
    Case(f"SELECT obs_id FROM {O} WHERE obs_release_date < '2021-01-01'",
         f"SELECT obs_id FROM {O}"),
    # --- subqueries -------------------------------------------------------------
    Case(f"SELECT obs_id FROM {O} WHERE obs_publisher_did IN (SELECT obs_publisher_did "
         f"FROM {F} WHERE frame_type = 'bias')",
         f"SELECT o.obs_id FROM {O} o JOIN {F} f USING (obs_publisher_did) "
         "WHERE f.frame_type = 'bias'"),
    Case(f"SELECT obs_id FROM {O} AS o WHERE EXISTS (SELECT * FROM {F} AS f WHERE "
         "f.obs_publisher_did = o.obs_publisher_did AND f.observer = 'Smith')",
         f"SELECT o.obs_id FROM {O} o JOIN {F} f USING (obs_publisher_did) "
         "WHERE f.observer = 'Smith'"),
    Case(f"SELECT obs_id FROM {O} WHERE NOT EXISTS (SELECT 1 FROM {F} WHERE "
         f"{F}.obs_publisher_did = {O}.obs_publisher_did)",
         f"SELECT obs_id FROM {O} WHERE obs_publisher_did NOT IN (SELECT obs_publisher_did "
         f"FROM {F})"),
    Case(f"SELECT obs_id FROM {O} WHERE s_dec > (0) AND obs_id NOT IN (SELECT obs_id FROM "
         f"{O} WHERE s_ra > 180)",
         f"SELECT obs_id FROM {O} WHERE s_dec > 0 AND s_ra <= 180"),
    Case(f"SELECT q.obs_id, q.ra FROM (SELECT obs_id, s_ra AS ra FROM {O} WHERE s_dec > 50) AS q "
         "WHERE q.ra > 100",
         f"SELECT obs_id, s_ra FROM {O} WHERE s_dec > 50 AND s_ra > 100"),
    Case(f"SELECT top 4 * FROM (SELECT obs_id FROM {O}) x ORDER BY obs_id DESC",
         f"SELECT obs_id FROM {O} ORDER BY obs_id DESC LIMIT 4", ordered=True),
    Case(f'SELECT q."Ra" FROM (SELECT s_ra AS "Ra" FROM {O}) AS q',
         f"SELECT s_ra FROM {O}"),
    Case(f"SELECT q.n FROM (SELECT COUNT(*) AS n FROM {O}) AS q", f"SELECT count(*) FROM {O}"),
    # --- joins ------------------------------------------------------------------
    Case(f"SELECT o.obs_id, f.filename FROM {O} AS o JOIN {F} AS f ON "
         "o.obs_publisher_did = f.obs_publisher_did",
         f"SELECT o.obs_id, f.filename FROM {O} o, {F} f WHERE "
         "o.obs_publisher_did = f.obs_publisher_did"),
    Case(f"SELECT o.obs_id, f.filename FROM {O} AS o INNER JOIN {F} AS f USING "
         "(obs_publisher_did)",
         f"SELECT o.obs_id, f.filename FROM {O} o, {F} f WHERE "
         "o.obs_publisher_did = f.obs_publisher_did"),
    Case(f"SELECT obs_publisher_did, filename FROM {O} NATURAL JOIN {F}",
         f"SELECT obs_publisher_did, filename FROM {O} NATURAL JOIN {F}"),
    Case(f"SELECT o.obs_id, f.filename FROM {O} AS o LEFT OUTER JOIN {F} AS f USING "
         "(obs_publisher_did)",
         f"SELECT o.obs_id, f.filename FROM {O} o LEFT JOIN {F} f ON "
         "o.obs_publisher_did = f.obs_publisher_did"),
    Case(f"SELECT obs_publisher_did, f.night FROM {F} AS f RIGHT JOIN {O} AS o USING "
         "(obs_publisher_did)",
         f"SELECT o.obs_publisher_did, f.night FROM {O} o LEFT JOIN {F} f ON "
         "o.obs_publisher_did = f.obs_publisher_did"),
    Case(f"SELECT obs_publisher_did FROM {F} FULL OUTER JOIN {O} USING (obs_publisher_did)",
         f"SELECT obs_publisher_did FROM {O}"),
    Case(f"SELECT o.obs_id FROM {O} AS o LEFT JOIN {F} AS f ON o.obs_publisher_did = "
         "f.obs_publisher_did WHERE f.filename IS NULL",
         f"SELECT obs_id FROM {O} WHERE obs_publisher_did NOT IN (SELECT obs_publisher_did "
         f"FROM {F})"),
    Case(f"SELECT COUNT(*) FROM {O} AS a, {O} AS b WHERE a.instrument_name = b.instrument_name",
         f"SELECT sum(c * c) FROM (SELECT count(*) c FROM {O} GROUP BY instrument_name) x"),
    Case(f"SELECT a.obs_id, b.obs_id FROM {O} AS a JOIN {O} AS b ON a.t_min = b.t_min - 0.37 "
         "WHERE a.s_dec > 60",
         f"SELECT a.obs_id, b.obs_id FROM {O} a, {O} b WHERE a.t_min = b.t_min - 0.37 "
         "AND a.s_dec > 60"),
    Case(f"SELECT f.filename, o.obs_id FROM ({F} AS f JOIN {O} AS o USING "
         f"(obs_publisher_did)) JOIN (SELECT obs_publisher_did, s_fov FROM {O}) AS q "
         "USING (obs_publisher_did) WHERE q.s_fov IS NULL",
         f"SELECT f.filename, o.obs_id FROM {F} f JOIN {O} o USING (obs_publisher_did) "
         "WHERE o.s_fov IS NULL"),
    Case(f"SELECT COUNT(*) FROM {O} AS a, {F} AS b", f"SELECT count(*) FROM {O}, {F}"),
    # --- aggregates, group by, having, order by --------------------------------
    Case(f"SELECT COUNT(*) FROM {O}", f"SELECT count(*) FROM {O}"),
    Case(f"SELECT COUNT(DISTINCT target_name), COUNT(target_name) FROM {O}",
         f"SELECT count(DISTINCT target_name), count(target_name) FROM {O}"),
    Case(f"SELECT COUNT(*), MIN(t_exptime), MAX(t_exptime), AVG(t_exptime), SUM(t_exptime) "
         f"FROM {O}",
         f"SELECT count(*), min(t_exptime), max(t_exptime), avg(t_exptime), sum(t_exptime) "
         f"FROM {O}"),
    Case(f"SELECT instrument_name, COUNT(*) AS n, AVG(s_dec) FROM {O} GROUP BY instrument_name "
         "HAVING COUNT(*) > 10 ORDER BY n DESC, instrument_name",
         f"SELECT instrument_name, count(*), avg(s_dec) FROM {O} GROUP BY 1 "
         "HAVING count(*) > 10 ORDER BY 2 DESC, 1", ordered=True),
    Case(f"SELECT dataproduct_type, COUNT(*) FROM {O} GROUP BY dataproduct_type ORDER BY 2 DESC",
         f"SELECT dataproduct_type, count(*) FROM {O} GROUP BY 1 ORDER BY 2 DESC",
         ordered=True),
    Case(f"SELECT instrument_name AS inst, SUM(access_estsize) FROM {O} GROUP BY inst",
         f"SELECT instrument_name, sum(access_estsize) FROM {O} GROUP BY 1"),
    Case(f"SELECT SUM(calib_level), AVG(calib_level) FROM {O}",
         f"SELECT count(*), 1.0 FROM {O}"),
    Case(f"SELECT obs_id, s_ra FROM {O} ORDER BY s_ra DESC, obs_id ASC",
         f"SELECT obs_id, s_ra FROM {O} ORDER BY s_ra DESC, obs_id", ordered=True),
    Case(f"SELECT obs_id FROM {O} ORDER BY s_dec * -1 OFFSET 200",
         f"SELECT obs_id FROM {O} ORDER BY s_dec DESC OFFSET 200", ordered=True),
    Case(f"SELECT TOP 3 obs_id FROM {O} ORDER BY obs_id OFFSET 10",
         f"SELECT obs_id FROM {O} ORDER BY obs_id OFFSET 10 LIMIT 3", ordered=True),
    Case(f"SELECT obs_id FROM {O} ORDER BY obs_id OFFSET 1000", "SELECT 1 WHERE false"),
    Case(f"SELECT obs_id, t_exptime FROM {O} ORDER BY 2, 1",
         f"SELECT obs_id, t_exptime FROM {O} ORDER BY 2, 1", ordered=True),
    Case(f"SELECT facility_name, instrument_name, COUNT(*) FROM {O} "
         "GROUP BY facility_name, instrument_name",
         f"SELECT facility_name, instrument_name, count(*) FROM {O} GROUP BY 1, 2"),
    Case(f"SELECT MIN(target_name), MAX(obs_release_date) FROM {O}",
         f"SELECT min(target_name), max(obs_release_date) FROM {O}"),
    # --- math -------------------------------------------------------------------
    Case(f"SELECT ABS(-3.14), CEILING(313.6), DEGREES(0.5), EXP(1.5), FLOOR(-2.5), LOG(10), "
         f"LOG10(1000), PI(), POWER(2, 10), RADIANS(90), SQRT(2) FROM {O} WHERE obs_id = "
         "'2018-01/0001'",
         "SELECT 3.14::float8, 314::float8, degrees(0.5), exp(1.5), -3::float8, ln(10), 3::float8, "
         "pi(), 1024::float8, pi() / 2, sqrt(2)"),
    Case(f"SELECT ACOS(1), ASIN(0), ATAN(1), ATAN2(1, 1), COS(0), COT(1), SIN(PI() / 2), "
         f"TAN(0) FROM {O} WHERE obs_id = '2018-01/0001'",
         "SELECT 0::float8, 0::float8, pi() / 4, pi() / 4, 1::float8, 1 / tan(1), 1::float8, "
         "0::float8"),
    Case(f"SELECT ROUND(2.567, 2), ROUND(-2.5), ROUND(1234.5, -2), TRUNCATE(2.567, 1), "
         f"TRUNCATE(-2.7), MOD(7, 3), MOD(-7.5, 2), MOD(7.5, -2) FROM {O} WHERE "
         "obs_id = '2018-01/0001'",
         "SELECT 2.57::float8, -3::float8, 1200::float8, 2.5::float8, -2::float8, 1, "
         "-1.5::float8, 1.5::float8"),
    Case(f"SELECT ROUND(s_ra, 3), TRUNCATE(s_dec, 2), MOD(s_ra, 10) FROM {O}",
         f"SELECT round(s_ra::numeric, 3)::float8, trunc(s_dec::numeric, 2)::float8, "
         f"mod(s_ra::numeric, 10)::float8 FROM {O}"),
    Case(f"SELECT COUNT(*) FROM {O} WHERE RAND() >= 0 AND RAND(5) < 1",
         f"SELECT count(*) FROM {O}"),
    Case(f"SELECT obs_id FROM {O} WHERE MOD(calib_level, 2) = 1", f"SELECT obs_id FROM {O}"),
    Case(f"SELECT SQRT(POWER(s_ra, 2) + POWER(s_dec, 2)) FROM {O}",
         f"SELECT sqrt(s_ra * s_ra + s_dec * s_dec) FROM {O}"),
    # --- strings, casts, coalesce, in_unit -----------------------------------------
    Case(f"SELECT LOWER(target_name), UPPER(target_name) FROM {O}",
         f"SELECT lower(target_name), upper(target_name) FROM {O}"),
    Case(f"SELECT obs_id FROM {O} WHERE LOWER(target_name) = 'm31'",
         f"SELECT obs_id FROM {O} WHERE target_name IN ('M31')"),
    Case(f"SELECT COALESCE(target_name, 'unknown'), COALESCE(t_exptime, s_fov, -1) FROM {O}",
         f"SELECT CASE WHEN target_name IS NULL THEN 'unknown' ELSE target_name END, "
         f"CASE WHEN t_exptime IS NOT NULL THEN t_exptime WHEN s_fov IS NOT NULL THEN s_fov "
         f"ELSE -1 END FROM {O}"),
    Case(f"SELECT CAST(2022 AS SMALLINT), CAST(5 AS INTEGER), CAST(123456 AS BigInt), "
         f"CAST(3.14 AS REAL), CAST(3.14 AS Double Precision), CAST('42' AS INTEGER) FROM {O} "
         "WHERE obs_id = '2018-01/0001'",
         "SELECT 2022::int2, 5, 123456::int8, 3.14::float4, 3.14::float8, 42"),
    Case(f"SELECT CAST(obs_id AS CHAR(4)), CAST(obs_id AS VARCHAR(4)), CAST(calib_level AS "
         f"VARCHAR), CAST(obs_id AS VarChar) FROM {O}",
         f"SELECT substr(obs_id, 1, 4), substr(obs_id, 1, 4), calib_level::text, obs_id FROM {O}"),
    Case(f"SELECT CAST('2021-01-14T11:25:00' AS TIMESTAMP), CAST(NULL AS VARCHAR) FROM {O} "
         "WHERE obs_id = '2018-01/0001'",
         "SELECT timestamp '2021-01-14 11:25:00', NULL::text"),
    Case(f"SELECT obs_id FROM {O} WHERE obs_release_date > CAST('2019-12-31' AS TIMESTAMP)",
         f"SELECT obs_id FROM {O}"),
    Case(f"SELECT CAST(s_ra AS INTEGER) FROM {O}", f"SELECT round(s_ra)::int FROM {O}"),
    Case(f"SELECT IN_UNIT(s_ra, 'rad'), IN_UNIT(s_dec, 'arcmin'), IN_UNIT(t_exptime, 'h'), "
         f"IN_UNIT(em_min, 'nm') FROM {O}",
         f"SELECT radians(s_ra), s_dec * 60, t_exptime / 3600, em_min * 1e9 FROM {O}"),
    Case(f"SELECT IN_UNIT(s_resolution, 'deg') FROM {O}",
         f"SELECT s_resolution / 3600 FROM {O}"),
    # --- set operations and common table expressions ---------------------------
    Case(f"SELECT obs_id FROM {O} WHERE s_dec > 60 UNION SELECT obs_id FROM {O} WHERE s_ra < 5",
         f"SELECT obs_id FROM {O} WHERE s_dec > 60 OR s_ra < 5"),
    Case(f"SELECT instrument_name FROM {O} UNION ALL SELECT instrument FROM {F}",
         f"SELECT instrument_name FROM {O} UNION ALL SELECT instrument FROM {F}"),
    Case(f"SELECT obs_id FROM {O} WHERE s_dec > 0 EXCEPT SELECT obs_id FROM {O} WHERE s_ra > 100",
         f"SELECT obs_id FROM {O} WHERE s_dec > 0 AND s_ra <= 100"),
    Case(f"SELECT instrument_name FROM {O} EXCEPT ALL SELECT instrument FROM {F}",
         f"SELECT instrument_name FROM {O} EXCEPT ALL SELECT instrument FROM {F}"),
    Case(f"SELECT obs_id FROM {O} WHERE s_dec > 0 INTERSECT SELECT obs_id FROM {O} "
         "WHERE s_ra > 100",
         f"SELECT obs_id FROM {O} WHERE s_dec > 0 AND s_ra > 100"),
    Case(f"SELECT instrument_name FROM {O} INTERSECT ALL SELECT instrument FROM {F}",
         f"SELECT instrument FROM {F}"),
    Case(f"SELECT obs_id FROM {O} WHERE s_dec > 70 UNION SELECT obs_id FROM {O} WHERE "
         f"s_ra < 50 INTERSECT SELECT obs_id FROM {O} WHERE s_dec < -20",
         f"SELECT obs_id FROM {O} WHERE s_dec > 70 OR (s_ra < 50 AND s_dec < -20)"),
    Case(f"(SELECT obs_id FROM {O} WHERE s_dec > 70 UNION SELECT obs_id FROM {O} WHERE s_ra < 50)"
         f" INTERSECT SELECT obs_id FROM {O} WHERE s_dec < -20",
         f"SELECT obs_id FROM {O} WHERE s_ra < 50 AND s_dec < -20"),
    Case(f"SELECT obs_id, s_ra FROM {O} WHERE s_dec > 70 UNION SELECT obs_id, s_ra FROM {O} "
         "WHERE s_dec < -25 ORDER BY s_ra DESC",
         f"SELECT obs_id, s_ra FROM {O} WHERE s_dec > 70 OR s_dec < -25 ORDER BY 2 DESC",
         ordered=True),
    Case(f"(SELECT TOP 3 obs_id FROM {O} ORDER BY obs_id ASC) UNION "
         f"(SELECT TOP 3 obs_id FROM {O} ORDER BY obs_id DESC)",
         f"(SELECT obs_id FROM {O} ORDER BY 1 LIMIT 3) UNION (SELECT obs_id FROM {O} "
         "ORDER BY 1 DESC LIMIT 3)"),
    Case(f"(SELECT TOP 2 obs_id FROM {O} WHERE s_dec > 80 ORDER BY obs_id) UNION SELECT obs_id "
         f"FROM {O} WHERE s_dec < -29 ORDER BY 1",
         f"(SELECT obs_id FROM {O} WHERE s_dec > 80 ORDER BY 1 LIMIT 2) UNION (SELECT obs_id "
         f"FROM {O} WHERE s_dec < -29) ORDER BY 1", ordered=True),
    Case(f"WITH north AS (SELECT obs_id, s_dec FROM {O} WHERE s_dec > 60) "
         "SELECT obs_id FROM north WHERE s_dec < 70",
         f"SELECT obs_id FROM {O} WHERE s_dec > 60 AND s_dec < 70"),
    Case(f"WITH a AS (SELECT obs_publisher_did, s_ra FROM {O}), b AS (SELECT * FROM a WHERE "
         f"s_ra < 30) SELECT f.filename FROM b JOIN {F} AS f USING (obs_publisher_did)",
         f"SELECT f.filename FROM {O} o JOIN {F} f USING (obs_publisher_did) WHERE o.s_ra < 30"),
    Case(f"WITH tenFirst AS (SELECT TOP 10 obs_id FROM {O} ORDER BY obs_id ASC), tenLast AS "
         f"(SELECT TOP 10 obs_id FROM {O} ORDER BY obs_id DESC) SELECT * FROM tenFirst UNION "
         "SELECT * FROM tenLast",
         f"(SELECT obs_id FROM {O} ORDER BY 1 LIMIT 10) UNION (SELECT obs_id FROM {O} ORDER BY "
         "1 DESC LIMIT 10)"),
    Case(f'WITH "Counts" AS (SELECT instrument_name, COUNT(*) AS n FROM {O} GROUP BY '
         'instrument_name) SELECT MAX(n) FROM "Counts"',
         f"SELECT max(c) FROM (SELECT count(*) c FROM {O} GROUP BY instrument_name) x"),
    # --- geometry -----------------------------------------------------------------
    Case(f"SELECT obs_id FROM {O} WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), "
         "CIRCLE('ICRS', 10, 20, 1))",
         f"SELECT obs_id FROM {O} WHERE {PT} <@ scircle(spoint(radians(10), radians(20)), "
         "radians(1))"),
    Case(f"SELECT obs_id FROM {O} WHERE CONTAINS(POINT(s_ra, s_dec), CIRCLE(POINT(10, 20), "
         "0.5)) = 0",
         f"SELECT obs_id FROM {O} WHERE NOT {PT} <@ scircle(spoint(radians(10), radians(20)), "
         "radians(0.5))"),
    Case(f"SELECT obs_id FROM {O} WHERE CONTAINS(POINT(s_ra, s_dec), CIRCLE(0, 0, 3)) = 1",
         f"SELECT obs_id FROM {O} WHERE degrees({PT} <-> spoint(0, 0)) <= 3"),
    Case(f"SELECT obs_id, CONTAINS(POINT(s_ra, s_dec), CIRCLE(10, 20, 1)) AS inside FROM {O}",
         f"SELECT obs_id, ({PT} <@ scircle(spoint(radians(10), radians(20)), radians(1)))::int "
         f"FROM {O}"),
    Case(f"SELECT obs_id FROM {O} WHERE DISTANCE(POINT(s_ra, s_dec), POINT(10, 20)) < 1",
         f"SELECT obs_id FROM {O} WHERE degrees({PT} <-> spoint(radians(10), radians(20))) < 1"),
    Case(f"SELECT obs_id FROM {O} WHERE DISTANCE(s_ra, s_dec, 10, 20) <= 0.7",
         f"SELECT obs_id FROM {O} WHERE degrees({PT} <-> spoint(radians(10), radians(20))) "
         "<= 0.7"),
    Case(f"SELECT obs_id FROM {O} WHERE 2 > DISTANCE(POINT(10, 20), POINT(s_ra, s_dec))",
         f"SELECT obs_id FROM {O} WHERE degrees({PT} <-> spoint(radians(10), radians(20))) < 2"),
    Case(f"SELECT obs_id FROM {O} WHERE DISTANCE(POINT(s_ra, s_dec), POINT(10, 20)) > 1.2 AND "
         "s_dec BETWEEN 18 AND 22",
         f"SELECT obs_id FROM {O} WHERE degrees({PT} <-> spoint(radians(10), radians(20))) > 1.2 "
         "AND s_dec BETWEEN 18 AND 22"),
    Case(f"SELECT obs_id, DISTANCE(POINT(s_ra, s_dec), POINT(0, 90)) FROM {O}",
         f"SELECT obs_id, 90 - s_dec FROM {O}"),
    Case(f"SELECT obs_id FROM {O} WHERE DISTANCE(POINT(s_ra, s_dec), POINT(10, 20)) < 100",
         f"SELECT obs_id FROM {O} WHERE degrees({PT} <-> spoint(radians(10), radians(20))) "
         "< 100"),
    Case(f"SELECT a.obs_id, b.obs_id FROM {O} AS a JOIN {O} AS b ON DISTANCE(a.s_ra, a.s_dec, "
         "b.s_ra, b.s_dec) < 0.2 WHERE a.obs_id < b.obs_id",
         f"SELECT a.obs_id, b.obs_id FROM {O} a, {O} b WHERE degrees(spoint(radians(a.s_ra), "
         "radians(a.s_dec)) <-> spoint(radians(b.s_ra), radians(b.s_dec))) < 0.2 AND a.obs_id "
         "< b.obs_id"),
    Case(f"SELECT obs_id FROM {O} WHERE 1 = INTERSECTS(s_region, CIRCLE(10, 20, 0.5))",
         f"SELECT obs_id FROM {O} WHERE s_region && scircle(spoint(radians(10), radians(20)), "
         "radians(0.5))"),
    Case(f"SELECT obs_id FROM {O} WHERE INTERSECTS(CIRCLE(10, 20, 0.5), s_region) = 1",
         f"SELECT obs_id FROM {O} WHERE s_region && scircle(spoint(radians(10), radians(20)), "
         "radians(0.5))"),
    Case(f"SELECT obs_id FROM {O} WHERE INTERSECTS(POINT(s_ra, s_dec), CIRCLE(10, 20, 1)) = 1",
         f"SELECT obs_id FROM {O} WHERE {PT} <@ scircle(spoint(radians(10), radians(20)), "
         "radians(1))"),
    Case(f"SELECT obs_id FROM {O} WHERE CONTAINS(POINT(10.3, 20.3), s_region) = 1",
         f"SELECT obs_id FROM {O} WHERE spoint(radians(10.3), radians(20.3)) <@ s_region"),
    Case(f"SELECT obs_id FROM {O} WHERE CONTAINS(s_region, CIRCLE(10, 20, 2)) = 1",
         f"SELECT obs_id FROM {O} WHERE s_region <@ scircle(spoint(radians(10), radians(20)), "
         "radians(2))"),
    Case(f"SELECT obs_id FROM {O} WHERE CONTAINS(POINT(s_ra, s_dec), POLYGON(9, 19, 11, 19, 11, "
         "21, 9, 21)) = 1",
         f"SELECT obs_id FROM {O} WHERE {PT} <@ '{{(9d,19d),(11d,19d),(11d,21d),(9d,21d)}}'"
         "::spoly"),
    Case(f"SELECT obs_id FROM {O} WHERE CONTAINS(POINT(s_ra, s_dec), POLYGON('ICRS', "
         "POINT(9, 19), POINT(11, 19), POINT(10, 21))) = 1",
         f"SELECT obs_id FROM {O} WHERE {PT} <@ '{{(9d,19d),(11d,19d),(10d,21d)}}'::spoly"),
    Case(f"SELECT obs_id FROM {O} WHERE CONTAINS(POINT(10, 20), POLYGON(s_ra - 1, s_dec - 1, "
         "s_ra + 1, s_dec - 1, s_ra, s_dec + 1)) = 1 AND s_dec BETWEEN 15 AND 25",
         f"SELECT obs_id FROM {O} WHERE spoint(radians(10), radians(20)) <@ (SELECT spoly(p "
         "ORDER BY k) FROM (VALUES (1, spoint(radians(s_ra - 1), radians(s_dec - 1))), (2, "
         "spoint(radians(s_ra + 1), radians(s_dec - 1))), (3, spoint(radians(s_ra), "
         "radians(s_dec + 1)))) AS w(k, p)) AND s_dec BETWEEN 15 AND 25"),
    Case(f"SELECT obs_id FROM {O} WHERE 1 = CONTAINS(POINT(s_ra, s_dec), REGION('Circle ICRS "
         "10 20 1'))",
         f"SELECT obs_id FROM {O} WHERE degrees({PT} <-> spoint(radians(10), radians(20))) "
         "<= 1"),
    Case(f"SELECT obs_id FROM {O} WHERE 1 = INTERSECTS(s_region, REGION('polygon 9 19 11 19 "
         "11 21 9 21'))",
         f"SELECT obs_id FROM {O} WHERE s_region && '{{(9d,19d),(11d,19d),(11d,21d),(9d,21d)}}'"
         "::spoly"),
    Case(f"SELECT COUNT(*) FROM {O} WHERE CONTAINS(REGION('Position ICRS GEOCENTER 10 20'), "
         "s_region) = 1",
         f"SELECT count(*) FROM {O} WHERE spoint(radians(10), radians(20)) <@ s_region"),
    Case(f"SELECT COORD1(POINT(s_ra, s_dec)), COORD2(POINT(s_ra, s_dec)) FROM {O}",
         f"SELECT s_ra, s_dec FROM {O}"),
    Case(f"SELECT COORDSYS(POINT(s_ra, s_dec)) FROM {O}", f"SELECT 'ICRS' FROM {O}"),
    Case(f"SELECT AREA(CIRCLE(10, 20, 1)), AREA(POINT(1, 2)) FROM {O} WHERE obs_id = "
         "'2018-01/0001'",
         "SELECT 2 * pi() * (1 - cos(radians(1))) * (180 / pi())^2, 0::float8"),
    Case(f"SELECT AREA(POLYGON(0, 0, 1, 0, 0, 1)) FROM {O} WHERE obs_id = '2018-01/0001'",
         "SELECT degrees(degrees(area('{(0d,0d),(1d,0d),(0d,1d)}'::spoly)))"),
    Case(f"SELECT obs_id, AREA(s_region) FROM {O}",
         f"SELECT obs_id, area(s_region) * (180 / pi())^2 FROM {O}"),
    Case(f"SELECT COORD1(CENTROID(CIRCLE(10, 20, 1))), COORD2(CENTROID(CIRCLE(10, 20, 1))) "
         f"FROM {O} WHERE obs_id = '2018-01/0001'", "SELECT 10::float8, 20::float8"),
    Case(f"SELECT COORD1(CENTROID(BOX(10, 20, 2, 2))), COORD2(CENTROID(BOX(10, 20, 2, 2))) "
         f"FROM {O} WHERE obs_id = '2018-01/0001'", "SELECT 10::float8, 20::float8"),
    Case(f"SELECT COUNT(*) FROM {O} WHERE DISTANCE(CENTROID(s_region), POINT(s_ra, s_dec)) "
         "< 0.01", f"SELECT count(*) FROM {O} WHERE s_region IS NOT NULL"),
    Case(f"SELECT POINT(s_ra, s_dec), CIRCLE(s_ra, s_dec, 1), s_region FROM {O}",
         f"SELECT {PT}, public.lick_scircle({PT}, radians(1)), s_region FROM {O}"),
    Case(f"SELECT CAST('12.3 45.6' AS POINT), CAST('12.3 45.6 1.0' AS CIRCLE), "
         f"CAST('1.0 0.1 2.0 0.2 3.0 0.3' AS POLYGON) FROM {O} WHERE obs_id = '2018-01/0001'",
         "SELECT spoint(radians(12.3), radians(45.6)), scircle(spoint(radians(12.3), "
         "radians(45.6)), radians(1)), '{(1d,0.1d),(2d,0.2d),(3d,0.3d)}'::spoly"),
    Case(f"SELECT DISTINCT POINT(s_ra, s_dec), s_region FROM {O} WHERE s_dec > 70",
         f"SELECT {PT}, s_region FROM {O} WHERE s_dec > 70"),
    Case(f"SELECT CIRCLE(s_ra, s_dec, 1) FROM {O} WHERE s_dec > 70 UNION SELECT "
         f"CIRCLE(s_ra, s_dec, 1) FROM {O} WHERE s_dec > 75",
         f"SELECT public.lick_scircle({PT}, radians(1)) FROM {O} WHERE s_dec > 70"),
    Case(f"SELECT obs_id FROM {O} WHERE POINT(s_ra, s_dec) = POINT(s_ra, s_dec)",
         f"SELECT obs_id FROM {O}"),
    Case(f"SELECT DISTANCE(NULL, POINT(1, 2)), CONTAINS(NULL, CIRCLE(1, 2, 3)), POINT(NULL, 1), "
         f"AREA(NULL), COORDSYS(NULL) FROM {O} WHERE obs_id = '2018-01/0001' OR "
         "DISTANCE(POINT(1, 2), NULL) < 1 OR INTERSECTS(NULL, s_region) = 1",
         "SELECT NULL, NULL, NULL, NULL, NULL"),
    Case(f"SELECT AREA(BOX(s_ra, s_dec, 1, t_exptime / 1000)), POLYGON(s_ra, s_dec, s_ra + 1, "
         f"s_dec, s_ra, s_fov) FROM {O} WHERE t_exptime IS NULL AND s_fov IS NULL",
         f"SELECT NULL, NULL FROM {O} WHERE t_exptime IS NULL AND s_fov IS NULL"),
    Case(f"SELECT ABS(NULL), LOWER(NULL), ROUND(NULL, 2), MIN(NULL), SUM(NULL), "
         f"ivo_hasword(NULL, 'x'), ivo_to_mjd(NULL), COALESCE(NULL, 1) FROM {O} WHERE obs_id = "
         "'2018-01/0001'", "SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1"),
    Case(f"SELECT NULL - NULL, -NULL, NULL || NULL, 1 + NULL, 'a' || NULL FROM {O} WHERE "
         "obs_id = '2018-01/0001'", "SELECT NULL, NULL, NULL, NULL, NULL"),
    Case(f"SELECT obs_id, CONTAINS(s_region, POINT(s_ra, s_dec)), CONTAINS(POINT(1, 2), "
         f"POINT(1, 2)) FROM {O}",
         f"SELECT obs_id, CASE WHEN s_region IS NOT NULL THEN 0 END, 1 FROM {O}"),
    Case(f"SELECT obs_id FROM {O} WHERE CONTAINS(CIRCLE(10, 20, 0.01), CIRCLE(10, 20, 5)) = 1",
         f"SELECT obs_id FROM {O}"),
    # --- user-defined functions ---------------------------------------------------
    Case(f"SELECT obs_id FROM {O} WHERE ivo_hasword(target_name, 'm31') = 1",
         f"SELECT obs_id FROM {O} WHERE target_name IN ('M31', 'm31 core')"),
    Case(f"SELECT obs_id FROM {O} WHERE ivo_hasword(target_name, 'CORE') = 0",
         f"SELECT obs_id FROM {O} WHERE target_name <> 'm31 core'"),
    Case(f"SELECT obs_id FROM {O} WHERE ivo_nocasematch(target_name, 'ngc%') = 1",
         f"SELECT obs_id FROM {O} WHERE target_name = 'NGC 1275'"),
    Case(f"SELECT obs_id FROM {O} WHERE ivo_interval_overlaps(t_min, t_max, 58010, 58011) = 1",
         f"SELECT obs_id FROM {O} WHERE t_max >= 58010 AND t_min <= 58011"),
    Case(f"SELECT obs_id, ivo_string_agg(instrument_name, '|') FROM {O} WHERE s_dec > 75 "
         "GROUP BY obs_id", f"SELECT obs_id, instrument_name FROM {O} WHERE s_dec > 75"),
    Case(f"SELECT obs_id FROM {O} WHERE ivo_hashlist_has('vega#m31#feige 34', target_name) = 1",
         f"SELECT obs_id FROM {O} WHERE target_name IN ('Vega', 'M31', 'Feige 34')"),
    Case(f"SELECT filename, ivo_to_mjd(date_obs), ivo_to_jd(night) FROM {F}",
         f"SELECT filename, extract(epoch FROM date_obs - timestamp '1858-11-17') / 86400, "
         f"(night - date '1858-11-17') + 2400000.5 FROM {F}"),
    # --- TAP_SCHEMA ----------------------------------------------------------------
    Case("SELECT table_name, description FROM TAP_SCHEMA.tables ORDER BY table_name",
         "SELECT table_name, description FROM tap_schema.tables ORDER BY 1", ordered=True),
    Case("SELECT column_name, datatype, arraysize, xtype, unit FROM TAP_SCHEMA.columns WHERE "
         "table_name = 'ivoa.obscore'",
         "SELECT column_name, datatype, arraysize, xtype, unit FROM tap_schema.columns WHERE "
         "table_name = 'ivoa.obscore'"),
    Case('SELECT "size", principal FROM tap_schema.columns WHERE column_name = \'s_ra\'',
         "SELECT size, principal FROM tap_schema.columns WHERE column_name = 's_ra'"),
    Case("SELECT k.from_table, c.from_column FROM tap_schema.keys AS k JOIN "
         "tap_schema.key_columns AS c USING (key_id)",
         "SELECT k.from_table, c.from_column FROM tap_schema.keys k JOIN "
         "tap_schema.key_columns c USING (key_id)"),
    *(Case(f"SELECT * FROM TAP_SCHEMA.{t.name}", "SELECT " + ", ".join(
        '"size"' if c.name == "size" else c.name for c in t.columns) + f" FROM tap_schema.{t.name}")
      for t in TAP_SCHEMA_TABLES),
    Case("SELECT t.table_name, c.column_name FROM TAP_SCHEMA.tables AS t JOIN "
         "TAP_SCHEMA.columns AS c ON t.table_name = c.table_name WHERE t.schema_name = 'ivoa' "
         "AND c.indexed = 1 ORDER BY c.column_index, c.column_name",
         "SELECT t.table_name, c.column_name FROM tap_schema.tables t JOIN tap_schema.columns c "
         "ON t.table_name = c.table_name WHERE t.schema_name = 'ivoa' AND c.indexed = 1 "
         "ORDER BY c.column_index, c.column_name", ordered=True),
    # --- ObsCore as clients ask (pyvo, TOPCAT, SIA-like) -----------------------
    Case(f"SELECT * FROM {O} WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 10, 20, "
         "0.5)) = 1 AND dataproduct_type = 'image'",
         "SELECT " + ", ".join(c.name for c in OBSCORE.published_columns) + f" FROM {O} WHERE "
         f"degrees({PT} <-> spoint(radians(10), radians(20))) <= 0.5 AND dataproduct_type = "
         "'image'"),
    Case(f"SELECT obs_publisher_did, access_url, t_min, t_max FROM {O} WHERE t_min < 58030 AND "
         "t_max > 58020 AND em_min < 3.8e-7 AND em_max > 5.6e-7",
         f"SELECT obs_publisher_did, access_url, t_min, t_max FROM {O} WHERE t_min < 58030 AND "
         "t_max > 58020 AND em_min < 3.8e-7 AND em_max > 5.6e-7"),
    Case(f"SELECT TOP 20 target_name, s_ra, s_dec, DISTANCE(POINT('ICRS', s_ra, s_dec), "
         f"POINT('ICRS', 10.0, 20.0)) AS dist FROM {O} WHERE 1 = CONTAINS(POINT('ICRS', s_ra, "
         "s_dec), CIRCLE('ICRS', 10.0, 20.0, 1.0)) ORDER BY dist ASC",
         f"SELECT target_name, s_ra, s_dec, degrees({PT} <-> spoint(radians(10), radians(20))) "
         f"AS d FROM {O} WHERE degrees({PT} <-> spoint(radians(10), radians(20))) <= 1 "
         "ORDER BY d LIMIT 20", ordered=True),
    Case(f"SELECT instrument_name, dataproduct_type, COUNT(*) AS n, MIN(t_min) AS first, "
         f"MAX(t_max) AS last FROM {O} WHERE obs_release_date < '2025-01-01' GROUP BY "
         "instrument_name, dataproduct_type ORDER BY n DESC, instrument_name",
         f"SELECT instrument_name, dataproduct_type, count(*), min(t_min), max(t_max) FROM {O} "
         "GROUP BY 1, 2 ORDER BY 3 DESC, 1", ordered=True),
    Case(f"SELECT o.obs_id, f.frame_type, f.airmass FROM {O} AS o JOIN {F} AS f ON "
         "f.obs_publisher_did = o.obs_publisher_did WHERE f.frame_type = 'science' AND "
         "INTERSECTS(o.s_region, CIRCLE('ICRS', 10, 20, 2)) = 1",
         f"SELECT o.obs_id, f.frame_type, f.airmass FROM {O} o JOIN {F} f USING "
         "(obs_publisher_did) WHERE f.frame_type = 'science' AND o.s_region && "
         "scircle(spoint(radians(10), radians(20)), radians(2))"),
    # --- lick.files -----------------------------------------------------------------
    Case(f"SELECT filename, night, date_obs FROM {F} WHERE night >= '2018-01-10' AND "
         "night < '2018-01-12'",
         f"SELECT filename, night, date_obs FROM {F} WHERE night BETWEEN '2018-01-10' AND "
         "'2018-01-11'"),
    Case(f"SELECT ra, dec, object FROM {F} WHERE dec > 60",
         f"SELECT ra, dec, object FROM {F} WHERE dec > 60"),
    Case(f"SELECT frame_type, COUNT(*), AVG(airmass) FROM {F} GROUP BY frame_type",
         f"SELECT frame_type, count(*), avg(airmass) FROM {F} GROUP BY 1"),
    Case(f"SELECT observer, COUNT(*) FROM {F} WHERE observer IS NOT NULL GROUP BY observer "
         "HAVING MIN(exptime) > 0",
         f"SELECT observer, count(*) FROM {F} WHERE observer IS NOT NULL GROUP BY 1 "
         "HAVING min(exptime) > 0"),
]


INVALID: list[Invalid] = [
    Invalid("SELECT obs_id FROM ivoa.obscore; DROP TABLE ivoa.obscore", 1, 34,
            "one statement"),
    Invalid("SELECT obs_id FROM ivoa.obscore;\nSELECT 1 FROM ivoa.obscore", 2, 1,
            "one statement"),
    Invalid("SELECT obs_id FROM ivoa.obscore LIMIT 10", 1, 33, "TOP"),
    Invalid("SELECT obs_id FROM ivoa.obscore AS o LIMIT 10", 1, 38, "TOP"),
    Invalid("SELECT s_ra::int FROM ivoa.obscore", 1, 12, "CAST"),
    Invalid("SELECT $$x$$ FROM ivoa.obscore", 1, 8, "$"),
    Invalid("SELECT pg_sleep(10) FROM ivoa.obscore", 1, 8, "pg_sleep"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE set_config('a.b', 'c', false) = 'c'", 1, 39,
            "set_config"),
    Invalid("SELECT version() FROM ivoa.obscore", 1, 8, "version"),
    Invalid("SELECT * FROM pg_catalog.pg_class", 1, 15, "unknown table"),
    Invalid("SELECT * FROM information_schema.tables", 1, 15, "unknown table"),
    Invalid("SELECT * FROM pg_class", 1, 15, "unknown table"),
    Invalid("SELECT * FROM auth.users", 1, 15, "unknown table"),
    Invalid("SELECT * FROM ingest.rejected_files", 1, 15, "unknown table"),
    Invalid("SELECT owner_ids FROM ivoa.obscore", 1, 8, "unknown column"),
    Invalid("SELECT o.owner_ids FROM ivoa.obscore AS o", 1, 10, "no column"),
    Invalid("SELECT file_id FROM lick.files", 1, 8, "unknown column"),
    Invalid("SELECT nope FROM ivoa.obscore", 1, 8, "unknown column nope"),
    Invalid("SELECT x.obs_id FROM ivoa.obscore AS o", 1, 8, "unknown table or alias x"),
    Invalid("SELECT obscore.obs_id FROM ivoa.obscore AS o", 1, 8, "unknown table or alias"),
    Invalid('SELECT "OBS_ID" FROM ivoa.obscore', 1, 8, "unknown column"),
    Invalid('SELECT obs_id FROM "IVOA".obscore', 1, 20, "unknown table"),
    Invalid("SELECT obs_publisher_did FROM ivoa.obscore, lick.files", 1, 8, "ambiguous"),
    Invalid("SELECT obs_id FROM ivoa.obscore\nWHERE\n  distance = 1", 3, 12, "expected '('"),
    Invalid("SELECT FROM ivoa.obscore", 1, 8, "reserved word"),
    Invalid("SELECT obs_id FROM", None, None, "end of query"),
    Invalid("SELECT obs_id ivoa.obscore", 1, 19, "unexpected"),
    Invalid("SELECT TOP -10 obs_id FROM ivoa.obscore", 1, 12, "unexpected"),
    Invalid("SELECT obs_id FROM ivoa.obscore OFFSET -10", 1, 40, "unexpected"),
    Invalid("SELECT obs_id FROM ivoa.obscore OFFSET 10.5", 1, 40, "unsigned integer"),
    Invalid("SELECT TOP 99999999999999999999 obs_id FROM ivoa.obscore", 1, 12, "too large"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(POINT(s_ra, s_dec), "
            "CIRCLE(1, 2, 3))", None, None, "end of query"),
    Invalid("SELECT POINT('fk5', 2, 3) FROM ivoa.obscore", 1, 14, "ICRS"),
    Invalid("SELECT CIRCLE('ICRS', 2, 3) FROM ivoa.obscore", 1, 8, "CIRCLE needs POINT"),
    Invalid("SELECT POLYGON(1, 2, 3, 4, 5) FROM ivoa.obscore", 1, 8, "three vertices"),
    Invalid("SELECT REGION('Union ICRS (Circle 1 2 3 Circle 4 5 6)') FROM ivoa.obscore", 1, 8,
            "REGION supports"),
    Invalid("SELECT REGION('Circle GALACTIC 1 2 3') FROM ivoa.obscore", 1, 8, "frame"),
    Invalid("SELECT REGION('Circle ICRS 1 2') FROM ivoa.obscore", 1, 8, "number of coord"),
    Invalid("SELECT REGION(obs_id) FROM ivoa.obscore", 1, 8, "string literal"),
    Invalid("SELECT POLYGON(0, 0, 0, 0, 1, 1) FROM ivoa.obscore", 1, 8, "three distinct"),
    Invalid("SELECT POLYGON(0, 0, 180, 0, 90, 10) FROM ivoa.obscore", 1, 8, "180 degrees"),
    Invalid("SELECT BOX(1, 2, 0, 1) FROM ivoa.obscore", 1, 8, "between 0 and 180"),
    Invalid("SELECT CIRCLE(1, 2, 91) FROM ivoa.obscore", 1, 8, "between 0 and 90"),
    Invalid("SELECT ivo_healpix_index(30, s_ra, s_dec) FROM ivoa.obscore", 1, 8,
            "between 0 and 29"),
    Invalid("SELECT CAST('0 0 0 0 0 0' AS POLYGON) FROM ivoa.obscore", 1, 8, "three distinct"),
    Invalid("SELECT ABS('x') FROM ivoa.obscore", 1, 8, "needs a number"),
    Invalid("SELECT s_ra + obs_id FROM ivoa.obscore", 1, 13, "needs a number"),
    Invalid("SELECT COALESCE() FROM ivoa.obscore", 1, 17, "unexpected"),
    Invalid("SELECT COALESCE(s_ra, obs_id) FROM ivoa.obscore", 1, 8, "same type"),
    Invalid("SELECT CAST(s_ra AS FLOAT) FROM ivoa.obscore", 1, 21, "unexpected"),
    Invalid("SELECT CAST(123 AS NULL) FROM ivoa.obscore", 1, 20, "unexpected"),
    Invalid("SELECT IN_UNIT(s_ra, 'kg') FROM ivoa.obscore", 1, 8, "cannot convert"),
    Invalid("SELECT IN_UNIT(s_ra, 'foo') FROM ivoa.obscore", 1, 8, "cannot convert"),
    Invalid("SELECT IN_UNIT(42, 'deg') FROM ivoa.obscore", 1, 8, "known unit"),
    Invalid("SELECT IN_UNIT(s_ra, '') FROM ivoa.obscore", 1, 8, "unitless"),
    Invalid("SELECT obs_id FROM ivoa.obscore UNION SELECT obs_id, s_ra FROM ivoa.obscore", 1, 33,
            "same number"),
    Invalid("SELECT obs_id FROM ivoa.obscore UNION SELECT s_ra FROM ivoa.obscore", 1, 33,
            "different types"),
    Invalid("SELECT obs_id FROM ivoa.obscore UNION (WITH t AS (SELECT obs_id FROM ivoa.obscore) "
            "SELECT obs_id FROM t)", 1, 40, "unexpected"),
    Invalid("SELECT * FROM (WITH t AS (SELECT obs_id FROM ivoa.obscore) SELECT obs_id FROM t) "
            "AS x", 1, 16, "reserved word"),
    Invalid("WITH t AS (SELECT obs_id FROM t) SELECT * FROM t", 1, 31, "unknown table"),
    Invalid("SELECT * FROM ivoa.obscore JOIN lick.files", 1, 28, "ON or USING"),
    Invalid("SELECT * FROM ivoa.obscore AS o JOIN lick.files AS f USING (nope)", 1, 61,
            "join column nope"),
    Invalid("SELECT obs_id FROM (SELECT obs_id FROM ivoa.obscore)", 1, 52, "unexpected"),
    Invalid("SELECT obs_id FROM ivoa.obscore ORDER BY 5", 1, 42, "output columns"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE POINT(s_ra, s_dec) < POINT(1, 2)", 1, 58,
            "cannot be compared"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE obs_id = 5", 1, 46, "cannot compare"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE s_ra LIKE 'x%'", 1, 39, "compare strings"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE obs_id < obs_release_date", 1, 46,
            "cannot compare"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE s_region BETWEEN s_region AND s_region", 1, 39,
            "BETWEEN"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE s_ra IN (SELECT obs_id FROM ivoa.obscore)", 1,
            39, "cannot compare"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE obs_id BETWEEN 1 AND 2", 1, 39,
            "cannot compare"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE s_ra IN ('a', 'b')", 1, 39,
            "cannot compare"),
    Invalid("SELECT obs_id FROM ivoa.obscore ORDER BY s_region", 1, 42, "ORDER BY polygon"),
    Invalid("SELECT COUNT(*) FROM ivoa.obscore GROUP BY POINT(s_ra, s_dec)", 1, 44,
            "GROUP BY point"),
    Invalid("SELECT ivo_hasword(s_ra) FROM ivoa.obscore", 1, 8, "takes 2 arguments"),
    Invalid("SELECT ivo_hasword(s_ra, 'x') FROM ivoa.obscore", 1, 8, "needs a string"),
    Invalid("SELECT MOD(1) FROM ivoa.obscore", 1, 8, "takes 2"),
    Invalid("SELECT ivo_to_mjd(s_ra) FROM ivoa.obscore", 1, 8, "needs a timestamp"),
    Invalid("SELECT ROUND(s_ra, s_dec) FROM ivoa.obscore", 1, 8, "integer literal"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE obs_id = 'x", 1, 48, "unterminated"),
    Invalid("SELECT 'a' 'b' FROM ivoa.obscore", 1, 12, "unexpected"),
    Invalid("SELECT 'a'\n  'b' x y FROM ivoa.obscore", 2, 9, "unexpected"),
    Invalid('SELECT "" FROM ivoa.obscore', 1, 8, "delimited identifier"),
    Invalid("SELECT _weird FROM ivoa.obscore", 1, 8, "unexpected character"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE obs_id = 'a' /* c */", 1, 53, "unexpected"),
    Invalid("SELECT * FROM ivoa.obscore AS a, ivoa.obscore AS a", 1, 50, "used twice"),
    Invalid("SELECT a.b.c.d.e FROM ivoa.obscore", 1, 8, "unknown table or alias"),
    Invalid("DELETE FROM ivoa.obscore", 1, 1, "unexpected"),
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE obs_id IN (SELECT obs_id, s_ra FROM "
            "ivoa.obscore)", 1, 39, "exactly one column"),
    # --- hostile text: characters PostgreSQL or XML cannot carry, where they stand ------
    Invalid("SELECT obs_id FROM ivoa.obscore WHERE obs_id = 'a\x00b'", 1, 50, "NUL"),
    Invalid("SELECT s_ra\x07 FROM ivoa.obscore", 1, 12, "control character U+0007"),
    Invalid("SELECT s_ra\nFROM ivoa.obscore WHERE target_name = '\x1b[31m'", 2, 40,
            "control character U+001B"),
    Invalid("SELECT s_ra FROM ivoa.obscore WHERE obs_id = 'a\ud800'", 1, 48, "surrogate"),
    Invalid("SELECT s_ra FROM ivoa.obscore -- \ufffe", 1, 34, "not a character"),
    Invalid("SELECT \u017f FROM ivoa.obscore", 1, 8, "double quotes"),
    Invalid("SELECT \u0663 FROM ivoa.obscore", 1, 8, "unexpected character"),
    Invalid("SELECT 1 FROM " + ", ".join(f"lick.files AS f{i}" for i in range(101)), 1,
            15 + 18 * 10 + 19 * 90, "more than 100 tables"),
    # --- numbers PostgreSQL's bigint and double cannot hold -----------------------------
    Invalid("SELECT 1e999 FROM ivoa.obscore", 1, 8, "out of range for a double"),
    Invalid("SELECT s_ra FROM ivoa.obscore WHERE s_ra < 9223372036854775808", 1, 44,
            "out of range"),
    Invalid("SELECT -9223372036854775809 FROM ivoa.obscore", 1, 8, "out of range"),
    Invalid("SELECT " + "9" * 400 + ".5 FROM ivoa.obscore", 1, 8, "out of range"),
    Invalid("SELECT TOP 99999999999999999999 s_ra FROM ivoa.obscore", 1, 12, "too large"),
    Invalid("SELECT CAST(s_ra AS CHAR(0)) FROM ivoa.obscore", 1, 8, "between 1 and"),
    Invalid("SELECT CAST(s_ra AS VARCHAR(99999999999)) FROM ivoa.obscore", 1, 8,
            "between 1 and 10485760"),
    Invalid("SELECT ROUND(s_ra, 401) FROM ivoa.obscore", 1, 8, "between -400 and 400"),
    Invalid("SELECT ivo_healpix_index(2.5, s_ra, s_dec) FROM ivoa.obscore", 1, 8,
            "must be an integer"),
    # --- shapes from text that pgSphere would fail on internally ------------------------
    Invalid("SELECT REGION('Circle ICRS nan 20 1') FROM ivoa.obscore", 1, 8, "finite"),
    Invalid("SELECT REGION('Polygon ICRS inf 2 3 4 5 6') FROM ivoa.obscore", 1, 8, "finite"),
    Invalid("SELECT CAST('inf 0' AS POINT) FROM ivoa.obscore", 1, 8, "finite"),
    Invalid("SELECT CAST('10 20 100' AS CIRCLE) FROM ivoa.obscore", 1, 8, "radius"),
    Invalid("SELECT POINT(10, 91) FROM ivoa.obscore", 1, 8, "latitude"),
    Invalid("SELECT REGION('Box 10 95 1 1') FROM ivoa.obscore", 1, 8, "latitude"),
    Invalid("SELECT IN_UNIT(s_ra, 'nonsense') FROM ivoa.obscore", 1, 8, "not a VOUnit"),
    # --- what PostgreSQL refuses with SQLSTATE class 42, refused here first -------------
    Invalid("SELECT s_dec FROM ivoa.obscore GROUP BY s_ra", 1, 8, "GROUP BY term"),
    Invalid("SELECT s_ra, COUNT(*) FROM ivoa.obscore", 1, 8, "GROUP BY term"),
    Invalid("SELECT calib_level FROM ivoa.obscore GROUP BY calib_level HAVING s_ra > 1", 1, 66,
            "in HAVING"),
    Invalid("SELECT calib_level FROM ivoa.obscore GROUP BY calib_level ORDER BY s_ra", 1, 68,
            "in ORDER BY"),
    Invalid("SELECT calib_level FROM ivoa.obscore AS o GROUP BY calib_level HAVING EXISTS "
            "(SELECT 1 FROM lick.files AS f WHERE f.obs_publisher_did = o.obs_publisher_did)",
            1, 137, "subquery in HAVING"),
    Invalid("SELECT COUNT(*) FROM ivoa.obscore WHERE COUNT(*) > 1", 1, 41, "WHERE"),
    Invalid("SELECT calib_level FROM ivoa.obscore GROUP BY COUNT(*)", 1, 47, "GROUP BY"),
    Invalid("SELECT SUM(COUNT(*)) FROM ivoa.obscore", 1, 8, "cannot be nested"),
    Invalid("SELECT * FROM ivoa.obscore GROUP BY obs_id", 1, 1, "SELECT *"),
    Invalid("SELECT DISTINCT obs_id FROM ivoa.obscore ORDER BY s_ra", 1, 51, "DISTINCT"),
    Invalid("SELECT POINT(s_ra, s_dec) FROM ivoa.obscore ORDER BY 1", 1, 54, "ORDER BY point"),
    Invalid("SELECT BOX(COUNT(*), 0, 1, 1) FROM ivoa.obscore", 1, 8, "aggregate"),
    Invalid("SELECT ivo_healpix_index(3, AVG(s_ra), 0) FROM ivoa.obscore", 1, 8, "aggregate"),
    Invalid("SELECT obs_id FROM ivoa.obscore UNION SELECT obs_release_date FROM ivoa.obscore",
            1, 33, "different types"),
]


# Grammar-only cases (parse, no metadata): valid ADQL 2.1 that must parse …
PARSE_VALID: list[str] = [
    "select x from y where Point(NULL, 2, 3)=x",
    "select x from y where box( 'fk5', 2, 3, 3, 0 ) = x",
    "select x from y where CENTROID( CIRCLE('fk4', 2, 3, 3) )=x",
    "select ROUND(5)as x from y",
    "select round(x,2)as a, truncate(x,-2)as b from foo",
    "SELECT ra1, dec, mass FROM ( SELECT * FROM spatial ) as q LEFT OUTER JOIN spatial2 "
    "USING ( ra1, dist ) JOIN misc ON ( dist=mass )",
    "SELECT ra1, dec, mass FROM ( spatial join spatial2 using (ra1) ), misc",
    "select distinct top 10 x, y from foo",
    "select TAP_UPLOAD. abc .c from TAP_UPLOAD . abc",
    "select top 3 * from x union ( select top 40 a from y except select * from z )",
    "select * from ( select TOP 30 * from x ) as q union select TOP 4 * from u",
    "select flag || 'ab'as cat from crazy",
    "SELECT ct FROM crazy JOIN ( SELECT height FROM spatial JOIN spatial2 ON ( ra2=dist ) "
    "GROUP BY height HAVING (height>avg(dist))) AS q ON ( wot=height )",
    "select all(a+b)X from most,(anything join else3 ON(a BETWEEN(b+and7)AND 4))",
    "SELECT long AS ra, des AS \"Description\" FROM stars",
    "select x from t1 order by log10(z+1) desc, 2*x asc",
    "select coordsys(p), coord1(p), coord2(p) from (select point('FK5', ra1, width) as p "
    "from spatial) as q",
    "SELECT id, ivo_healpix_index(6, ra, dec) AS hpx FROM atable",
    "SELECT count(*) as qty, obs_collection -- Num of datasets\nFROM ivoa.ObsCore "
    "GROUP BY obs_collection ORDER BY qty",
    "SELECT dataproduct_type, count(*) NumProducts, sum(access_estsize)/1000000000. TB FROM "
    "ivoa.ObsCore group by dataproduct_type order by 3 desc",
    "SELECT * FROM t1 NATURAL LEFT OUTER JOIN t2",
    "SELECT a FROM t WHERE NOT EXISTS (SELECT * FROM u) AND NOT a IN (1, 2)",
    "SELECT 1.e5, .5, 5., 1E-3 FROM t",
    "WITH a AS (SELECT 1 FROM t), b AS (SELECT 2 FROM a) SELECT * FROM b",
    "SELECT TOP 0 * FROM t OFFSET 0",
]

# … and invalid text it must refuse.
PARSE_INVALID: list[str] = [
    "selectxfromywherePoint(NULL,2,3)=x",
    "select x fromy where Point('fk5', 2, 3)=x",
    "select x from y whereCIRCLE('fk5', 2, 3, 3)=x",
    "select x from y where Point ('fk5',2,3)",
    "select * FROM y WHERE CONTAINS(a,b)",
    "select * from a group by d having (d>2",
    "SELECT FROM stars",
    "SELECT distance FROM stars",
    "SELECT * FROM t1 INNER JOIN t2 NATURAL",
    "SELECT name, ra, dec FROM stars OFFSET -10",
    "SELECT name FROM stars WHERE name LIKE",
    "SELECT a FROM t WHERE a BETWEEN 1",
    "SELECT a FROM t GROUP a",
    "SELECT a b c FROM t",
    "SELECT a FROM t UNION",
    "SELECT a FROM t WHERE a IS 1",
    "SELECT a FROM t t2 t3",
    "SELECT a FROM t ORDER BY a NULLS FIRST",
    "SELECT a FROM t FETCH FIRST 5 ROWS ONLY",
    "SELECT a FROM t WHERE a ~ 'x'",
]
