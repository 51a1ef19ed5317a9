"""The one door to the files: identifiers resolved through row-level security."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from auth.principals import ANONYMOUS, Principal
from tests.conftest import DemoArchive, TestDatabase, fetch
from vo_service.database.pool import Pool
from vo_service.services.datasets import DatasetLookup
from vo_service.services.tap import IdentitySecret

NIGHT = "((now() AT TIME ZONE 'UTC') - interval '20 hours')::date"


@pytest.fixture(scope="module")
def lookup(database: TestDatabase, archive: DemoArchive) -> Iterator[DatasetLookup]:
    query, owner = Pool("t-query", database.query_dsn, 2), Pool("t-owner", database.owner_dsn, 1)
    query.open()
    owner.open()
    yield DatasetLookup(query, IdentitySecret(owner), [archive.root])
    query.close()
    owner.close()


def _proprietary(database: TestDatabase) -> tuple[str, int]:
    rows = fetch(database.owner_dsn, "SELECT obs_publisher_did, owner_ids[1] FROM lick.files "
                 f"WHERE release_date::date > {NIGHT} AND cardinality(owner_ids) > 0 LIMIT 1")
    return str(rows[0][0]), int(rows[0][1])


def test_visibility_follows_row_level_security(lookup, database) -> None:
    did, owner_id = _proprietary(database)
    (public,) = fetch(database.owner_dsn, "SELECT obs_publisher_did FROM lick.files WHERE "
                      f"release_date::date <= {NIGHT} LIMIT 1")[0]
    assert set(lookup.visible(ANONYMOUS, [did, public])) == {public}
    owner = Principal(user_id=owner_id, login="", display_name="")
    found = lookup.visible(owner, [did, public, "ivo://nothing"])
    assert set(found) == {did, public}
    path = lookup.file_of(found[did])
    assert path is not None and path.stat().st_size == found[did].file_size
    assert lookup.header(ANONYMOUS, did) is None
    assert "SIMPLE" in (lookup.header(owner, did) or "")


@pytest.mark.parametrize("did", ["../../etc/passwd", "/etc/passwd", "", "\x00",
                                 "ivo://lick.archive.example/lick?../../../etc/passwd"])
def test_paths_in_identifiers_are_unknown_identifiers(lookup, did) -> None:
    assert lookup.visible(ANONYMOUS, [did]) == {}


def test_calibrations_of_the_night(lookup, database) -> None:
    rows = fetch(database.owner_dsn, "SELECT f.obs_publisher_did FROM lick.files f WHERE "
                 "f.frame_type = 'science' AND EXISTS (SELECT 1 FROM lick.files c WHERE "
                 "c.night = f.night AND c.instrument = f.instrument AND c.frame_type <> "
                 f"'science') AND f.release_date::date <= {NIGHT} LIMIT 1")
    science = lookup.visible(ANONYMOUS, [rows[0][0]])[rows[0][0]]
    calibrations = lookup.calibrations(ANONYMOUS, science)
    assert calibrations and all(c.night == science.night and c.frame_type != "science"
                                for c in calibrations)


def test_a_file_outside_its_root_is_not_served(lookup, database, tmp_path: Path) -> None:
    did, owner_id = _proprietary(database)
    owner = Principal(user_id=owner_id, login="", display_name="")
    elsewhere = DatasetLookup(lookup.pool, lookup.secret, [tmp_path])
    assert elsewhere.file_of(lookup.visible(owner, [did])[did]) is None
