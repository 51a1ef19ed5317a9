"""The leak matrix (tests/auth/leak_matrix.py) on cutouts: each principal gets pixels
of exactly the datasets it may see; every other ID — proprietary, undated, granted
to someone else, expired or revoked grants — answers exactly as an ID that does not
exist (401 with a challenge for anonymous requests, 404 for logged-in ones), with
HTTP Basic and with bearer tokens alike.

The matrix's rows get real files here (Nickel frames at the rows' position) in an
archive root of their own, served by a server on a database of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.auth import leak_matrix
from tests.auth.leak_matrix import DID_PREFIX, EXPECTED, REFUSED_OVER_HTTP, ROWS, LeakDataset
from tests.conftest import RunningServer, TestDatabase, database_env, fetch, running_server
from tests.soda.frames import frame
from tests.soda.helpers import read_fits, soda_error

CIRCLE = ("CIRCLE", "10 20 0.01")  # the rows' s_ra, s_dec


@pytest.fixture(scope="module")
def leak(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[RunningServer, LeakDataset]]:
    own = database.new_database("soda_leak")
    dataset = leak_matrix.install(own.owner_dsn)
    fetch(own.owner_dsn, "UPDATE ivoa.obscore SET dataproduct_type = 'image' WHERE "
          "obs_publisher_did LIKE %s RETURNING 1", (DID_PREFIX + "%",))
    root = tmp_path_factory.mktemp("leak-archive")
    for row in ROWS:
        path = root / f"{row.night:%Y-%m/%d}" / row.instrument_dir / f"{row.name}.fits"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame(path, "nickel", ra=10.0, dec=20.0, shape=(40, 40))
    env = {**database_env(database, own), "LICK_ARCHIVE_INGEST_ROOTS": str(root)}
    with running_server(own, env) as server:
        yield server, dataset


def _credentials(dataset: LeakDataset, name: str, how: str) -> dict[str, object]:
    if name == "anonymous":
        return {}
    if how == "basic":
        return {"auth": dataset.passwords[name]}
    return {"headers": {"Authorization": f"Bearer {dataset.tokens[name]}"}}


def _get(server: RunningServer, pairs: list[tuple[str, str]], **credentials: object
         ) -> httpx.Response:
    return httpx.get(f"{server.base_url}/soda/sync", params=pairs, timeout=60,
                     **credentials)  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["basic", "bearer"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cutouts_follow_the_matrix(leak, name: str, how: str) -> None:
    server, dataset = leak
    credentials = _credentials(dataset, name, how)
    unknown = DID_PREFIX + "no_such_row"
    absent = _get(server, [("ID", unknown), CIRCLE], **credentials)
    if name in REFUSED_OVER_HTTP:
        # a disabled account is refused, not downgraded to anonymous (a few requests:
        # failed logins are throttled)
        assert absent.status_code == 401
        public = _get(server, [("ID", dataset.did("public_old")), CIRCLE], **credentials)
        assert public.status_code == 401
        return
    anonymous = name == "anonymous"
    status, label = (401, "AuthenticationError") if anonymous else (404, "UsageError")
    soda_error(absent, status, label)
    for row in ROWS:
        did = dataset.did(row.name)
        reply = _get(server, [("ID", did), CIRCLE], **credentials)
        if row.name in EXPECTED[name]:
            assert reply.status_code == 200, (name, row.name, reply.text[:300])
            assert read_fits(reply.content)[0].data.size > 0
            if not anonymous:
                assert reply.headers["cache-control"] == "private"
        else:
            soda_error(reply, status, label)
            assert reply.text.replace(did, "X") == absent.text.replace(unknown, "X"), \
                (name, row.name)
            assert reply.headers.get("www-authenticate") == \
                absent.headers.get("www-authenticate")


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - REFUSED_OVER_HTTP))
def test_all_visible_at_once_and_one_hidden_spoils_it(leak, name: str) -> None:
    server, dataset = leak
    credentials = _credentials(dataset, name, "basic")
    visible = sorted(dataset.visible_dids(name))
    reply = _get(server, [*(("ID", did) for did in visible), CIRCLE], **credentials)
    assert reply.status_code == 200, reply.text[:300]
    with read_fits(reply.content) as hdus:
        expected = len(visible) + (1 if len(visible) > 1 else 0)
        assert len(hdus) == expected
        history = "\n".join(str(h) for h in hdus[0].header["HISTORY"])
        assert all(did in history for did in visible)
    hidden = sorted({dataset.did(r.name) for r in ROWS} - set(visible))
    if hidden:
        mixed = _get(server, [*(("ID", did) for did in visible), ("ID", hidden[0]), CIRCLE],
                     **credentials)
        assert mixed.status_code in (401, 404)
        assert hidden[0] in mixed.text and all(did not in mixed.text for did in visible)
