"""STILTS taplint on the served demo archive, votlint on results, STC-S s_region."""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest

STILTS = shutil.which("stilts")
pytestmark = pytest.mark.skipif(STILTS is None, reason="Debian package stilts missing")

# Debian 12's taplint (STILTS 3.4.7) predates the ADQL 2.1 REC's feature key for
# COALESCE; newer STILTS lists it with the other ADQL 2.1 keys.  Nothing else may appear.
KNOWN_TAPLINT_LIMITS = {
    'E-CAP-KEYX-1 Unknown standard feature key '
    '"ivo://ivoa.net/std/TAPRegExt#features-adql-conditional" for language ADQL',
}


def test_taplint_is_clean(server, archive):
    # LOC tests ObsLocTAP (ivoa.obsplan), which this service does not publish.
    result = subprocess.run(
        [STILTS, "taplint", f"tapurl={server.tap_url}", "report=EWF", "stages=-LOC"],
        capture_output=True, text=True, timeout=900)
    reports = {line.strip() for line in result.stdout.splitlines()
               if re.match(r"^[EWF]-[A-Z]{3}-", line)}
    assert reports <= KNOWN_TAPLINT_LIMITS, "\n".join(sorted(reports))
    assert "Totals: Errors: 1; Warnings: 0; Failures: 0" in result.stdout, result.stdout[-2000:]


@pytest.mark.parametrize("fmt", ["votable/td", "votable/b", "votable/b2"])
def test_votlint_on_results(server, archive, tmp_path, fmt):
    reply = httpx.get(f"{server.tap_url}/sync", params={
        "LANG": "ADQL", "RESPONSEFORMAT": fmt,
        "QUERY": "SELECT TOP 50 * FROM ivoa.obscore ORDER BY obs_id"})
    assert reply.status_code == 200
    path = tmp_path / "result.vot"
    path.write_bytes(reply.content)
    lint = subprocess.run([STILTS, "votlint", f"votable={path}"], capture_output=True,
                          text=True, timeout=300)
    assert lint.stdout.strip() == "" and lint.returncode == 0, lint.stdout + lint.stderr


def test_s_region_is_stcs_polygon_containing_the_pointing(server, archive):
    reply = httpx.get(f"{server.tap_url}/sync", params={
        "LANG": "ADQL", "RESPONSEFORMAT": "csv",
        "QUERY": "SELECT TOP 20 s_ra, s_dec, s_region FROM ivoa.obscore "
                 "WHERE s_region IS NOT NULL ORDER BY obs_id"})
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    table = Table.read(reply.text, format="ascii.csv")
    assert len(table) == 20
    for row in table:
        words = row["s_region"].split()
        assert words[:2] == ["POLYGON", "ICRS"]
        values = [float(w) for w in words[2:]]
        assert len(values) >= 6 and len(values) % 2 == 0
        vertices = SkyCoord(values[0::2], values[1::2], unit="deg")
        centre = SkyCoord(row["s_ra"], row["s_dec"], unit="deg")
        assert max(vertices.separation(centre).deg) < 1.0
