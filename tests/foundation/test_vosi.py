"""VOSI endpoints of the running service: availability, capabilities, tables."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree

from tap_schema.declaration import OBSCORE
from tests.xsd import validate

# ObsCore 1.1 table 4: the mandatory columns of ivoa.obscore.
MANDATORY = {
    "dataproduct_type", "calib_level", "obs_collection", "obs_id", "obs_publisher_did",
    "access_url", "access_format", "access_estsize", "target_name", "s_ra", "s_dec", "s_fov",
    "s_region", "s_resolution", "s_xel1", "s_xel2", "t_min", "t_max", "t_exptime",
    "t_resolution", "t_xel", "em_min", "em_max", "em_res_power", "em_xel", "o_ucd",
    "pol_states", "pol_xel", "facility_name", "instrument_name",
}


def test_availability_is_valid_and_available(server):
    reply = httpx.get(f"{server.tap_url}/availability")
    assert reply.status_code == 200
    root = validate(reply.content)
    available = root.find("{http://www.ivoa.net/xml/VOSIAvailability/v1.0}available")
    assert available is not None and available.text == "true"


def test_tableset_is_valid_and_lists_obscore_mandatory_columns(server):
    reply = httpx.get(f"{server.tap_url}/tables")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/xml")
    root = validate(reply.content)
    tables = {t.findtext("name"): t for t in root.iter("table")}
    assert {"ivoa.obscore", "lick.files", "tap_schema.columns"} <= set(tables)
    columns = {c.findtext("name") for c in tables["ivoa.obscore"].iter("column")}
    assert columns >= MANDATORY
    assert "owner_ids" not in columns


def test_tableset_detail_min_has_no_columns(server):
    root = validate(httpx.get(f"{server.tap_url}/tables", params={"detail": "min"}).content)
    assert list(root.iter("table"))
    assert not list(root.iter("column"))


def test_single_table_document(server):
    root = validate(httpx.get(f"{server.tap_url}/tables/ivoa.obscore").content)
    assert root.findtext("name") == "ivoa.obscore"
    assert len(root.findall("column")) == len(OBSCORE.published_columns)


@pytest.mark.parametrize("path", ["/tap/tables/ivoa.nothing", "/tap/tables/lick.secret"])
def test_unknown_table_is_a_dali_404(server, path):
    reply = httpx.get(server.base_url + path)
    assert reply.status_code == 404
    root = validate(reply.content)
    info = root.find(".//{http://www.ivoa.net/xml/VOTable/v1.3}INFO")
    assert info is not None and info.get("value") == "ERROR"
    assert "no published table" in (info.text or "")


def test_capabilities_are_valid_tapregext(server):
    reply = httpx.get(f"{server.tap_url}/capabilities")
    root = validate(reply.content)
    ids = {c.get("standardID") for c in root.iter("capability")}
    assert {"ivo://ivoa.net/std/TAP", "ivo://ivoa.net/std/VOSI#capabilities",
            "ivo://ivoa.net/std/VOSI#availability", "ivo://ivoa.net/std/VOSI#tables-1.1"} <= ids
    methods = [
        sorted(m.get("standardID") or "" for m in c.iter("securityMethod"))
        for c in root.iter("capability")
    ]
    assert all(m == methods[0] for m in methods), "every capability declares the same methods"
    assert etree.QName(root).localname == "capabilities"


def test_unknown_path_is_not_html(server):
    reply = httpx.get(f"{server.base_url}/no/such/thing")
    assert reply.status_code == 404
    assert "html" not in reply.headers["content-type"]
