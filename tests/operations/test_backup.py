"""``lick-archive backup`` and ``restore``: a backup of the suite's archive restored into
a fresh instance (a second embedded cluster in a data directory of its own) has every
row, every job result and the configuration, and serves them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROJECT, TestDatabase, cli_env, fetch, run_cli, running_server
from vo_service.database import setup
from vo_service.database.backup import table_counts
from vo_service.settings import load_settings

QUERY = "SELECT TOP 40 obs_publisher_did, s_ra, s_dec FROM ivoa.obscore ORDER BY 1"


@pytest.fixture(scope="module")
def fresh_instance() -> Iterator[TestDatabase]:
    """Settings of a second instance: an empty data directory, its own embedded cluster
    (created by the restore)."""
    if os.environ.get("LICK_ARCHIVE_TEST_DATABASE_URL"):
        pytest.skip("restores into an embedded cluster of its own")
    data_dir = Path(tempfile.mkdtemp(prefix="lick-restore-"))
    data_dir.chmod(0o755)
    settings = load_settings(PROJECT / "conf" / "lick-archive.toml", environ={}).replace(
        service={"data_dir": data_dir}, database={"url": ""})
    try:
        yield TestDatabase(settings, setup.database_target(settings))
    finally:
        setup.embedded_cluster(settings).destroy()
        shutil.rmtree(data_dir, ignore_errors=True)


def _completed_job(base_url: str) -> tuple[str, bytes]:
    created = httpx.post(f"{base_url}/tap/async", data={
        "LANG": "ADQL", "QUERY": QUERY, "PHASE": "RUN"})
    job = created.headers["location"]
    deadline = time.monotonic() + 60
    while httpx.get(f"{job}/phase").text != "COMPLETED":
        assert time.monotonic() < deadline, httpx.get(job).text
        time.sleep(0.1)
    result = httpx.get(f"{job}/results/result", timeout=60)
    assert result.status_code == 200
    return job.rsplit("/", 1)[1], result.content


def test_backup_restores_into_a_fresh_instance(database, archive, server, fresh_instance,
                                               tmp_path) -> None:
    job_id, result = _completed_job(server.base_url)
    target = tmp_path / "backup"
    out = run_cli(database, "backup", str(target))
    assert "backup written" in out
    manifest = json.loads((target / "manifest.json").read_text())
    assert (target / "archive.dump").stat().st_size > 0
    assert manifest["revision"] == fetch(database.owner_dsn,
                                         "SELECT version_num FROM alembic_version")[0][0]
    assert manifest["counts"]["lick.files"] > 100 and manifest["job_files"] >= 1
    assert set(manifest["config_files"]) == {"lick-archive.toml", "instruments.toml"}
    assert (target / "config" / "lick-archive.toml").read_text() == \
        (PROJECT / "conf" / "lick-archive.toml").read_text()
    assert any(path.name == job_id for path in (target / "jobs").iterdir())
    # a backup never overwrites another
    again = subprocess.run([sys.executable, "-m", "vo_service.cli", "backup", str(target)],
                           env=cli_env(database), cwd=PROJECT, capture_output=True, text=True)
    assert again.returncode == 2 and "not empty" in again.stderr

    fresh = fresh_instance
    out = run_cli(fresh, "restore", str(target))
    assert "restored the backup" in out
    fresh = TestDatabase(fresh.settings, setup.initialize(fresh.settings))
    # every table has the rows it had at the backup (TAP_SCHEMA is this release's)
    original = table_counts(database.target.admin_dsn or database.owner_dsn)
    restored = table_counts(fresh.target.admin_dsn or fresh.owner_dsn)
    assert restored == manifest["counts"]
    for name, count in original.items():
        if not name.startswith("uws."):  # this suite's server keeps making jobs
            assert restored[name] == count, name
    # the same rows, not only as many
    digest = ("SELECT md5(string_agg(obs_publisher_did || coalesce(release_date::text, '') "
              "|| array_to_string(owner_ids, ','), '|' ORDER BY obs_publisher_did)) "
              "FROM lick.files")
    assert fetch(fresh.owner_dsn, digest) == fetch(database.owner_dsn, digest)
    # a restore never lands on an archive
    refused = subprocess.run([sys.executable, "-m", "vo_service.cli", "restore", str(target)],
                             env=cli_env(fresh), cwd=PROJECT, capture_output=True, text=True)
    assert refused.returncode == 2 and "already" in refused.stderr

    # the restored instance serves the job's result, the same bytes, and the archive
    with running_server(fresh, {"LICK_ARCHIVE_INGEST_ROOTS": str(archive.root)}) as copy:
        again_result = httpx.get(f"{copy.tap_url}/async/{job_id}/results/result", timeout=60)
        assert again_result.status_code == 200 and again_result.content == result
        rows = {"LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": "csv"}
        assert httpx.get(f"{copy.tap_url}/sync", params=rows, timeout=60).text == \
            httpx.get(f"{server.tap_url}/sync", params=rows, timeout=60).text
        # logins (the users and their hashes) came back too
        login, password = archive.password(archive.schedule["observers"][0]["obid"])
        mine = {"LANG": "ADQL", "QUERY": "SELECT COUNT(*) AS n FROM lick.files",
                "RESPONSEFORMAT": "csv"}
        assert httpx.get(f"{copy.tap_url}/sync", params=mine, auth=(login, password),
                         timeout=60).text == httpx.get(
            f"{server.tap_url}/sync", params=mine, auth=(login, password), timeout=60).text
