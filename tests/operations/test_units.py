"""The systemd units in conf/: valid for this systemd (``systemd-analyze verify`` says
nothing), hardened (``systemd-analyze security`` rates each service OK), run as the
dedicated user, and restarted when a daemon fails."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT

CONF = PROJECT / "conf"
UNITS = sorted([*CONF.glob("*.service"), *CONF.glob("*.timer")])
SERVICES = [u for u in UNITS if u.suffix == ".service"]
DAEMONS = {"lick-archive.service": "on-failure", "lick-archive-watch.service": "always"}
INSTALLED = "/opt/lick-archive/.venv/bin/lick-archive"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed")


def _settings(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.fixture()
def local_units(tmp_path: Path) -> Path:
    """The units with ExecStart pointing at this checkout's command (verify checks
    that the program exists)."""
    command = str(Path(sys.executable).parent / "lick-archive")
    for unit in UNITS:
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED, command))
    return tmp_path


def test_units_are_valid(local_units: Path) -> None:
    assert {u.name for u in UNITS} >= {
        "lick-archive.service", "lick-archive-watch.service",
        "lick-archive-users-sync.service", "lick-archive-users-sync.timer",
        "lick-archive-backup.service", "lick-archive-backup.timer"}
    for unit in UNITS:
        result = subprocess.run(["systemd-analyze", "verify", str(local_units / unit.name)],
                                capture_output=True, text=True, timeout=60)
        problems = [line for line in (result.stdout + result.stderr).splitlines()
                    if str(local_units) in line or "Unknown" in line or "Failed" in line]
        assert result.returncode == 0 and problems == [], (unit.name, result.stderr)


def test_services_are_hardened(local_units: Path) -> None:
    for unit in SERVICES:
        settings = _settings(unit)
        assert settings["User"] == ["lick-archive"] and settings["Group"] == ["lick-archive"]
        for key, value in (("NoNewPrivileges", "true"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "true"), ("PrivateTmp", "true"),
                           ("CapabilityBoundingSet", "")):
            assert settings.get(key) == [value], (unit.name, key)
        assert any(v.startswith(INSTALLED) or INSTALLED in v
                   for v in settings["ExecStart"]), unit.name
        result = subprocess.run(["systemd-analyze", "security", "--offline=true",
                                 str(local_units / unit.name)],
                                capture_output=True, text=True, timeout=60)
        match = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", result.stdout)
        assert match is not None, result.stdout[-500:] + result.stderr
        assert float(match.group(1)) <= 2.0 and match.group(2) == "OK", (unit.name,
                                                                         match.group(0))


def test_daemons_restart_and_the_user_is_declared() -> None:
    for name, policy in DAEMONS.items():
        settings = _settings(CONF / name)
        assert settings["Restart"] == [policy], name
        assert float(settings["RestartSec"][0]) > 0 and "StartLimitBurst" in settings
    # the one writable place of the service is its state directory
    service = _settings(CONF / "lick-archive.service")
    assert service["ReadWritePaths"] == ["/var/lib/lick-archive"]
    assert service["StateDirectory"] == ["lick-archive"]
    # the watcher only reads the archive
    assert "ReadWritePaths" not in _settings(CONF / "lick-archive-watch.service")
    sysusers = (CONF / "sysusers.d" / "lick-archive.conf").read_text()
    assert re.search(r"^u lick-archive - .+ /var/lib/lick-archive /usr/sbin/nologin$",
                     sysusers, re.M)
    for timer, service in (("lick-archive-users-sync.timer", "lick-archive-users-sync"),
                           ("lick-archive-backup.timer", "lick-archive-backup")):
        assert (CONF / f"{service}.service").exists()
        assert "Persistent" in _settings(CONF / timer)
