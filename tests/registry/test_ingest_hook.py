"""``lick-archive ingest`` leaves the coverage and the records up to date by itself.

The demo archive ingested into a database of its own, with no server running on it:
when the command returns, the coverage counts exactly the public datasets of each
collection (the demo archive has proprietary ones too), nothing is left stale, and
every collection with public data has its record.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import PROJECT, cli_env, database_env, fetch


def test_ingest_refreshes_the_registry(database, archive) -> None:
    own = database.new_database("registry_ingest")
    env = {**cli_env(database), **database_env(database, own),
           "LICK_ARCHIVE_SCHEDULE_DSN": str(database.schedule_dsn)}  # the demo schedule
    result = subprocess.run([sys.executable, "-m", "vo_service.cli", "ingest",
                             str(archive.root)], env=env, cwd=PROJECT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    public = dict(fetch(own.owner_dsn,
                        "SELECT obs_collection, count(*) FROM ivoa.obscore WHERE "
                        "obs_release_date < auth.public_before() GROUP BY obs_collection"))
    total = fetch(own.owner_dsn, "SELECT count(*) FROM ivoa.obscore")[0][0]
    assert public and sum(public.values()) < total  # some demo data are proprietary
    stored = dict(fetch(own.owner_dsn, "SELECT collection, datasets FROM registry.coverage"))
    assert stored == public
    assert fetch(own.owner_dsn, "SELECT coverage_stale FROM registry.state")[0][0] is False
    records = {r[0] for r in fetch(own.owner_dsn, "SELECT identifier FROM registry.records "
                                                  "WHERE NOT deleted")}
    authority = "ivo://" + database.settings.service.authority
    for collection in public:
        slug = collection.lower().replace("/", "-")
        assert f"{authority}/collections/{slug}" in records
