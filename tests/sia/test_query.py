"""/sia/query against a real server over the demo archive.

Every SIA 2.0 parameter, alone (with repeats that OR) and combined (parameters AND),
is compared with :mod:`tests.sia.reference`, which decides the expected rows in
Python from the rows read with the owner role and the release rules.  Also: MAXREC
and its honest OVERFLOW, MAXREC=0 and its self-description, the DataLink descriptor,
the output formats, GET and POST, clients (pyvo anonymous and with HTTP Basic),
STILTS votlint, the capabilities against the XSDs, and refusals that say what to fix.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import pyvo
from astropy.io import fits
from astropy.io.votable import parse
from lxml import etree
from pyvo.auth import authsession

from tests.sia import reference
from tests.sia.cases import combined_cases, parameter_cases
from tests.sia.client import VOT, dids, error_message, get, pairs, status
from tests.xsd import validate

STILTS = shutil.which("stilts")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def rows(server, archive):
    return reference.read_rows(server.database.owner_dsn)


@pytest.fixture(scope="module")
def owner(archive, rows):
    """A demo observer who owns proprietary images: (obid, (login, password))."""
    for observer in archive.schedule["observers"]:
        hidden = [r for r in rows if not r.released and r.values["dataproduct_type"] == "image"
                  and observer["obid"] in (r.values["owner_ids"] or [])]
        if hidden:
            return observer["obid"], (observer["email"], observer["password"])
    pytest.fail("the demo archive has no proprietary images")


def _check(server, rows, queries, auth=None, obid=None):
    """Each query's rows equal the reference's; the reference is not trivial."""
    sizes = []
    for query in queries:
        expected = reference.expected(rows, query, obid)
        got = dids(get(server.base_url, query, auth, MAXREC="100000"))
        assert got == expected, (query, sorted(got - expected)[:3], sorted(expected - got)[:3])
        sizes.append(len(expected))
    return sizes


PARAMETERS = ["POS", "BAND", "TIME", "POL", "FOV", "SPATRES", "EXPTIME", "ID", "COLLECTION",
              "FACILITY", "INSTRUMENT", "DPTYPE", "CALIB", "TARGET", "TIMERES", "SPECRP",
              "FORMAT"]


@pytest.mark.parametrize("name", PARAMETERS)
def test_each_parameter_matches_the_reference(server, rows, name):
    sizes = _check(server, rows, parameter_cases(rows)[name])
    images = len(reference.expected(rows, {}))
    # Every demo image has one calibration level, product type and access format, and
    # none is polarimetric; the other parameters' values must select some images only.
    if name not in ("POL", "DPTYPE", "CALIB", "FORMAT"):
        assert any(0 < n < images for n in sizes), (name, sizes)
    assert 0 in sizes or name in ("POS", "TIME", "BAND"), (name, sizes)


def test_combined_parameters_match_the_reference(server, rows):
    sizes = _check(server, rows, combined_cases(rows))
    assert len(set(sizes)) > 2, sizes


def test_an_owner_sees_own_images_too(server, rows, owner):
    obid, auth = owner
    cases = combined_cases(rows)
    _check(server, rows, cases, auth, obid)
    mine = reference.expected(rows, {}, obid)
    public = reference.expected(rows, {})
    assert public < mine


def test_names_are_case_insensitive_and_post_equals_get(server, rows):
    query = {"pos": ["CIRCLE 10 20 90"], "Instrument": ["Nickel Direct"], "maxrec": ["5000"]}
    expected = reference.expected(rows, {"POS": ["CIRCLE 10 20 90"],
                                         "INSTRUMENT": ["Nickel Direct"]})
    assert dids(get(server.base_url, query)) == expected
    posted = httpx.post(f"{server.base_url}/sia/query", content=urlencode(pairs(query)),
                        headers=FORM, timeout=60)
    assert dids(posted) == expected


def test_negative_zero_radius_is_zero(server, rows):
    """'-0' parses as -0.0, which pgSphere's parser refuses as a radius (was a 500)."""
    query = {"POS": ["CIRCLE 10 20 -0"]}
    assert dids(get(server.base_url, query)) == reference.expected(
        rows, {"POS": ["CIRCLE 10 20 0"]})


def test_unknown_parameters_and_blank_values_are_ignored(server, rows):
    reply = get(server.base_url, {"FOO": ["1"], "BAND": [""], "REQUEST": ["query"]},
                MAXREC="100000")
    assert dids(reply) == reference.expected(rows, {})


def test_maxrec_and_an_honest_overflow(server, rows):
    count = len(reference.expected(rows, {}))
    exact = get(server.base_url, {}, MAXREC=str(count))
    assert len(dids(exact)) == count and status(exact)[0] == "OK"
    short = get(server.base_url, {}, MAXREC=str(count - 1))
    assert len(dids(short)) == count - 1 and status(short)[0] == "OVERFLOW"
    default = get(server.base_url, {})
    assert len(dids(default)) == count and status(default)[0] == "OK"


def _resources(reply) -> dict[str, etree._Element]:
    root = etree.fromstring(reply.content)
    return {r.get("name"): r for r in root.findall(f"{VOT}RESOURCE")}


def _options(resource, name: str) -> list[str]:
    param = resource.find(f"{VOT}GROUP/{VOT}PARAM[@name='{name}']")
    return [o.get("value") for o in param.findall(f"{VOT}VALUES/{VOT}OPTION")]


def test_maxrec_zero_describes_the_service_with_visible_values(server, rows, owner):
    reply = get(server.base_url, {"POS": ["CIRCLE 10 20 1"]}, MAXREC="0")
    assert reply.status_code == 200
    assert status(reply)[0] == "OK"  # metadata only, no OVERFLOW (SIA 2.0, MAXREC)
    table = parse(io.BytesIO(reply.content)).get_first_table()
    assert len(table.array) == 0 and "s_region" in [f.name for f in table.fields]
    this = _resources(reply)["this"]
    assert this.get("type") == "meta" and this.get("utype") == "adhoc:service"
    assert this.get("ID") == "this"
    params = {p.get("name"): p for p in this.findall(f"{VOT}GROUP/{VOT}PARAM")}
    assert set(params) >= {"POS", "BAND", "TIME", "POL", "FOV", "SPATRES", "EXPTIME", "ID",
                           "COLLECTION", "FACILITY", "INSTRUMENT", "DPTYPE", "CALIB",
                           "TARGET", "TIMERES", "SPECRP", "FORMAT", "MAXREC"}
    assert params["BAND"].get("unit") == "m" and params["BAND"].get("xtype") == "interval"
    assert params["TIME"].get("unit") == "d" and params["CALIB"].get("datatype") == "int"

    def visible_values(column, obid=None):
        return sorted({str(r.values[column]) for r in rows
                       if reference.visible(r, obid) and r.values[column] is not None
                       and r.values["dataproduct_type"] in reference.IMAGE_TYPES})

    for name, column in (("COLLECTION", "obs_collection"), ("INSTRUMENT", "instrument_name"),
                         ("FACILITY", "facility_name"), ("DPTYPE", "dataproduct_type"),
                         ("FORMAT", "access_format")):
        assert sorted(_options(this, name)) == visible_values(column), name
    obid, auth = owner
    mine = _resources(get(server.base_url, {}, auth, MAXREC="0"))["this"]
    assert sorted(_options(mine, "INSTRUMENT")) == visible_values("instrument_name", obid)


def test_maxrec_zero_in_other_formats_has_the_columns_only(server):
    csv = get(server.base_url, {}, MAXREC="0", RESPONSEFORMAT="csv")
    assert csv.status_code == 200 and csv.text.count("\n") == 1
    assert csv.text.startswith("dataproduct_type,calib_level,")
    fits_reply = get(server.base_url, {}, MAXREC="0", RESPONSEFORMAT="fits")
    with fits.open(io.BytesIO(fits_reply.content)) as hdus:
        assert len(hdus[1].data) == 0


def test_results_carry_the_datalink_descriptor(server, rows):
    reply = get(server.base_url, {"POS": ["RANGE -Inf +Inf -Inf +Inf"]}, MAXREC="3")
    descriptor = _resources(reply)["datalink"]
    assert descriptor.get("type") == "meta" and descriptor.get("utype") == "adhoc:service"
    params = {p.get("name"): p.get("value") for p in descriptor.findall(f"{VOT}PARAM")}
    assert params["standardID"] == "ivo://ivoa.net/std/DataLink#links-1.1"
    assert params["accessURL"] == f"{server.base_url}/datalink/links"
    ref = descriptor.find(f"{VOT}GROUP/{VOT}PARAM[@name='ID']").get("ref")
    root = etree.fromstring(reply.content)
    field = root.find(f".//{VOT}FIELD[@ID='{ref}']")
    assert field is not None and field.get("name") == "obs_publisher_did"
    # pyvo finds it from the rows
    results = pyvo.dal.SIA2Service(f"{server.base_url}/sia").search(
        pos=(10, 20, 90), maxrec=2)
    service = results.get_adhocservice_by_ivoid("ivo://ivoa.net/std/DataLink#links")
    assert any(p.name == "accessURL" and p.value == f"{server.base_url}/datalink/links"
               for p in service.params)


def test_pyvo_follows_the_descriptor_to_each_rows_links(server, rows):
    """From SIA rows to their DataLink documents, as pyvo does it (one call for a
    batch of rows through the descriptor, or per row)."""
    results = pyvo.dal.SIA2Service(f"{server.base_url}/sia").search(
        pos=(10, 20, 90), maxrec=3)
    wanted = {str(d) for d in results.to_table()["obs_publisher_did"]}
    assert len(wanted) == 3

    def this(links) -> set[str]:  # (pyvo's bysemantics reads a vocabulary from the net)
        table = links.to_table()
        return {str(i) for i, s in zip(table["ID"], table["semantics"], strict=True)
                if s == "#this"}

    assert set().union(*(this(links) for links in results.iter_datalinks())) == wanted
    record = results[0]
    assert this(record.getdatalink()) == {str(record["obs_publisher_did"])}


@pytest.mark.parametrize("fmt", ["votable", "votable/td", "votable/b", "csv", "tsv", "fits"])
def test_output_formats_hold_the_same_rows(server, rows, fmt):
    query = {"POS": ["CIRCLE 10 20 90", "CIRCLE 200 -20 90"]}
    expected = reference.expected(rows, query)
    reply = get(server.base_url, query, RESPONSEFORMAT=fmt, MAXREC="100000")
    assert reply.status_code == 200, reply.text[:300]
    if fmt.startswith("votable"):
        assert dids(reply) == expected
    elif fmt == "fits":
        with fits.open(io.BytesIO(reply.content)) as hdus:
            assert {str(d) for d in hdus[1].data["obs_publisher_did"]} == expected
    else:
        assert reply.text.count("\n") == len(expected) + 1


@pytest.mark.skipif(STILTS is None, reason="Debian package stilts missing")
@pytest.mark.parametrize("extra", [{}, {"RESPONSEFORMAT": "votable/td"},
                                   {"RESPONSEFORMAT": "votable/b"}, {"MAXREC": "0"},
                                   {"MAXREC": "2"}])
def test_votlint_is_silent(server, archive, tmp_path: Path, extra):
    reply = get(server.base_url, {"POS": ["CIRCLE 10 20 90"]}, **extra)
    assert reply.status_code == 200
    path = tmp_path / "sia.vot"
    path.write_bytes(reply.content)
    lint = subprocess.run([STILTS, "votlint", f"votable={path}"], capture_output=True,
                          text=True, timeout=120)
    assert lint.stdout.strip() == "" and lint.returncode == 0, lint.stdout[:2000]
    validate(reply.content)


def test_capabilities_and_availability_validate(server):
    capabilities = httpx.get(f"{server.base_url}/sia/capabilities")
    assert capabilities.status_code == 200
    root = validate(capabilities.content)
    ids = [c.get("standardID") for c in root.findall("capability")]
    assert ids.count("ivo://ivoa.net/std/SIA#query-2.0") == 1
    assert "ivo://ivoa.net/std/VOSI#availability" in ids
    query = root.find("capability[@standardID='ivo://ivoa.net/std/SIA#query-2.0']")
    urls = {i.findtext("accessURL") for i in query.findall("interface")}
    assert urls == {f"{server.base_url}/sia/query"}
    methods = {m.get("standardID") for m in query.findall("interface/securityMethod")}
    assert methods == {"ivo://ivoa.net/sso#BasicAA", "ivo://ivoa.net/sso#cookie"}
    assert "WWW-Authenticate" in capabilities.headers
    availability = httpx.get(f"{server.base_url}/sia/availability")
    assert availability.status_code == 200
    validate(availability.content)


def test_pyvo_anonymous_search(server, rows):
    service = pyvo.dal.SIA2Service(f"{server.base_url}/sia")
    results = service.search(pos=(10, 20, 90), band=(4e-7, 9e-7), maxrec=100000)
    expected = reference.expected(rows, {"POS": ["CIRCLE 10 20 90"],
                                         "BAND": ["4e-07 9e-07"]})
    assert {str(d) for d in results.to_table()["obs_publisher_did"]} == expected
    everything = service.search(maxrec=100000)
    assert {str(d) for d in everything.to_table()["obs_publisher_did"]} == \
        reference.expected(rows, {})


def test_pyvo_basic_auth_sees_own_proprietary_images(server, rows, owner):
    obid, (login, password) = owner
    session = authsession.AuthSession()
    session.credentials.set_password(login, password)
    service = pyvo.dal.SIA2Service(f"{server.base_url}/sia", session=session)
    got = {str(d) for d in service.search(maxrec=100000).to_table()["obs_publisher_did"]}
    assert got == reference.expected(rows, {}, obid)
    assert got - reference.expected(rows, {})


def test_wrong_password_is_401(server, owner):
    _obid, (login, _password) = owner
    reply = get(server.base_url, {}, (login, "wrong"))
    assert reply.status_code == 401 and reply.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("params,words", [
    ({"POS": "CIRCLE 10 20"}, "three numbers"),
    ({"POS": "CIRCLE 10 20 91"}, "radius"),
    ({"POS": "CIRCLE 400 20 1"}, "longitude"),
    ({"POS": "CIRCLE 10 -95 1"}, "latitude"),
    ({"POS": "CIRCLE 10 NaN 1"}, "finite number"),
    ({"POS": "CIRCLE 10 20 +Inf"}, "finite number"),
    ({"POS": "BOX 10 20 1 1"}, "CIRCLE"),
    ({"POS": "RANGE 20 10 0 1"}, "two POS values"),
    ({"POS": "RANGE 0 10 5 1"}, "lat1 is above lat2"),
    ({"POS": "RANGE 0 10 -100 1"}, "outside"),
    ({"POS": "POLYGON 0 0 10 10 10 0 0 10"}, "cross or touch"),
    ({"POS": "POLYGON 0 0 120 0 240 0"}, "hemisphere"),
    ({"POS": "POLYGON 0 0 1 1"}, "three vertices"),
    ({"BAND": "5e-7 4e-7"}, "lower bound"),
    ({"BAND": "1 2 3"}, "interval"),
    ({"BAND": "abc"}, "not a finite number"),
    ({"BAND": "+Inf 5"}, "lower bound"),
    ({"TIME": "1e999"}, "beyond the range"),
    ({"TIME": "2020-01-01"}, "not a finite number"),
    ({"EXPTIME": "1_000"}, "not a finite number"),
    ({"FOV": "NaN NaN"}, "-Inf or +Inf"),
    ({"CALIB": "1.5"}, "calibration level"),
    ({"CALIB": "7"}, "calibration level"),
    ({"POL": "Z"}, "polarization state"),
    ({"MAXREC": "-1"}, "MAXREC"),
    ({"MAXREC": "lots"}, "MAXREC"),
    ({"RESPONSEFORMAT": "image/png"}, "RESPONSEFORMAT"),
])
def test_bad_values_are_usage_faults_that_say_what_to_fix(server, params, words):
    reply = httpx.get(f"{server.base_url}/sia/query", params=params, timeout=30)
    assert reply.status_code == 400, reply.text[:300]
    message = error_message(reply)
    assert message.startswith("UsageFault: ") and words in message, message


def test_too_many_values_are_refused(server):
    body = urlencode([("POS", f"CIRCLE {i % 360} 0 1") for i in range(101)])
    reply = httpx.post(f"{server.base_url}/sia/query", content=body, headers=FORM, timeout=30)
    assert reply.status_code == 400 and "at most 100" in error_message(reply)
