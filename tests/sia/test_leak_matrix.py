"""The leak matrix over SIA: each principal sees exactly its permitted rows, by every door.

The rows, accounts, groups and grants of :mod:`tests.auth.leak_matrix` are installed
in a database of their own (made images, each with its own instrument name), served
by a real server.  Every principal, with HTTP Basic and with its bearer token, must
get exactly its permitted rows from /sia/query — with no constraint, a cone, an ID
probe for every row, TARGET and INSTRUMENT probes, open intervals — and MAXREC=0
must offer exactly the instrument names of those rows.  Anonymous SIA never shows a
proprietary row; a disabled account's credentials are refused (401).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg2
import pytest
from lxml import etree

from tests.auth import leak_matrix
from tests.auth.leak_matrix import DID_PREFIX, EXPECTED, REFUSED_OVER_HTTP, LeakDataset
from tests.conftest import RunningServer, database_env, running_server
from tests.sia.client import VOT, dids, get

PRINCIPALS = sorted(EXPECTED)


@pytest.fixture(scope="module")
def dataset(database) -> tuple[LeakDataset, dict[str, str]]:
    db = database.new_database("sia_leak")
    conn = psycopg2.connect(db.owner_dsn)
    with conn, conn.cursor() as cur:
        cur.execute("TRUNCATE lick.files, ivoa.obscore CASCADE")
    conn.close()
    installed = leak_matrix.install(db.owner_dsn)
    conn = psycopg2.connect(db.owner_dsn)
    with conn, conn.cursor() as cur:  # SIA serves images; one instrument name per row
        cur.execute("UPDATE ivoa.obscore SET dataproduct_type = 'image', instrument_name = "
                    "'instrument ' || target_name, t_min = 60000, t_max = 60000.01 "
                    "WHERE obs_publisher_did LIKE %s", (DID_PREFIX + "%",))
    conn.close()
    return installed, database_env(database, db)


@pytest.fixture(scope="module")
def leak_server(database, dataset) -> Iterator[RunningServer]:
    _installed, env = dataset
    with running_server(database, env) as running:
        yield running


def _credentials(dataset: LeakDataset, who: str, how: str) -> dict[str, object]:
    if who == "anonymous":
        return {}
    if how == "basic":
        return {"auth": dataset.passwords[who]}
    return {"headers": {"Authorization": f"Bearer {dataset.tokens[who]}"}}


def _leak_dids(reply: httpx.Response) -> set[str]:
    return {d for d in dids(reply) if d.startswith(DID_PREFIX)}


QUERIES = [
    {},
    {"POS": ["CIRCLE 10 20 0.5"]},
    {"POS": ["RANGE -Inf +Inf -Inf +Inf"], "TIME": ["-Inf +Inf"]},
    {"POS": ["POLYGON 9 19 11 19 11 21 9 21"], "FOV": ["0.1 +Inf"], "CALIB": ["1"]},
    {"COLLECTION": ["Lick/test"], "TIME": ["60000.005"]},
    {"ID": [LeakDataset.did(name) for name in sorted(leak_matrix.ALL)]},
    {"ID": [DID_PREFIX.split("?")[0].upper() + "?" + name
            for name in sorted(leak_matrix.ALL)]},  # the registry part in capitals
    {"TARGET": sorted(leak_matrix.ALL)},
    {"INSTRUMENT": [f"instrument {name}" for name in sorted(leak_matrix.ALL)]},
]


@pytest.mark.parametrize("how", ["basic", "bearer"])
@pytest.mark.parametrize("who", PRINCIPALS)
def test_each_principal_sees_exactly_its_rows(leak_server, dataset, who, how) -> None:
    installed, _db = dataset
    credentials = _credentials(installed, who, how)
    if who in REFUSED_OVER_HTTP:
        reply = httpx.get(f"{leak_server.base_url}/sia/query", timeout=30,
                          **credentials)  # type: ignore[arg-type]
        assert reply.status_code == 401
        return
    expected = installed.visible_dids(who)
    for query in QUERIES:
        reply = httpx.get(f"{leak_server.base_url}/sia/query", timeout=60,
                          params=[(n, v) for n, vs in query.items() for v in vs]
                          + [("MAXREC", "100000")], **credentials)  # type: ignore[arg-type]
        assert _leak_dids(reply) == expected, (who, how, query)


@pytest.mark.parametrize("who", [p for p in PRINCIPALS if p not in REFUSED_OVER_HTTP])
def test_maxrec_zero_offers_only_visible_values(leak_server, dataset, who) -> None:
    installed, _db = dataset
    reply = httpx.get(f"{leak_server.base_url}/sia/query", params={"MAXREC": "0"}, timeout=60,
                      **_credentials(installed, who, "basic"))  # type: ignore[arg-type]
    assert reply.status_code == 200
    root = etree.fromstring(reply.content)
    param = root.find(f"{VOT}RESOURCE[@name='this']/{VOT}GROUP/{VOT}PARAM[@name='INSTRUMENT']")
    offered = {o.get("value") for o in param.findall(f"{VOT}VALUES/{VOT}OPTION")}
    leak_instruments = {v for v in offered if v.startswith("instrument ")}
    assert leak_instruments == {f"instrument {name}" for name in EXPECTED[who]}


def test_anonymous_never_gets_a_proprietary_row(leak_server, dataset) -> None:
    installed, _db = dataset
    public = installed.visible_dids("anonymous")
    for name in sorted(leak_matrix.ALL - EXPECTED["anonymous"]):
        did = LeakDataset.did(name)
        for query in ({"ID": [did]}, {"TARGET": [name]}, {"INSTRUMENT": [f"instrument {name}"]},
                      {"ID": [did], "MAXREC": ["0"]}):
            reply = get(leak_server.base_url, query)
            assert reply.status_code == 200
            assert name not in reply.text, (name, query)
    everything = _leak_dids(get(leak_server.base_url, {}, MAXREC="100000"))
    assert everything == public
