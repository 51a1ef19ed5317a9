"""A private PostgreSQL cluster in the service's data directory (the embedded default).

It listens only on a unix socket inside its own directory, so it neither needs nor
disturbs a PostgreSQL already running on the machine (port 5432 included).  When
started by root it runs as the ``postgres`` system user, because PostgreSQL refuses
to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"


class ClusterError(RuntimeError):
    """The embedded cluster could not be created, started or stopped; says why."""


def find_postgres_bin() -> Path:
    """The newest installed PostgreSQL whose pgSphere extension is installed too."""
    candidates = []
    for bin_dir in Path("/usr/lib/postgresql").glob("*/bin"):
        version = bin_dir.parent.name
        control = Path(f"/usr/share/postgresql/{version}/extension/pg_sphere.control")
        if (bin_dir / "initdb").exists() and control.exists():
            candidates.append((float(version), bin_dir))
    if not candidates:
        raise ClusterError(
            "no PostgreSQL with pgSphere found: install the Debian packages "
            "'postgresql' and 'postgresql-NN-pgsphere' (NN = the PostgreSQL major version), "
            "or run `make demo` as root, which installs them"
        )
    return max(candidates)[1]


@dataclass(frozen=True)
class EmbeddedCluster:
    """The cluster living in ``<root>/data`` with its socket in ``<root>/socket``."""

    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def dsn(self, user: str, dbname: str) -> str:
        return f"host={self.socket_dir} user={user} dbname={dbname}"

    def _run_as(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        return ["runuser", "-u", SUPERUSER, "--"]

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [*self._run_as(), *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise ClusterError(
                f"{' '.join(args[:2])} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return result

    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> bool:
        """Create the cluster if it does not exist; True if it was created now."""
        if self.initialized:
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0 and self._run("test", "-x", str(self.root.parent),
                                            check=False).returncode != 0:
            raise ClusterError(
                f"the {SUPERUSER} system user, which runs the embedded database when "
                f"started by root, cannot reach {self.root.parent}; set [service] data_dir "
                "(LICK_ARCHIVE_SERVICE_DATA_DIR) to a directory it can traverse"
            )
        if os.geteuid() == 0:
            user = pwd.getpwnam(SUPERUSER)
            for path in (self.root, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        self.root.chmod(0o700)
        bin_dir = find_postgres_bin()
        self._run(
            str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER,
            "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions",
        )
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# Lick Archive embedded cluster: private unix socket only.\n"
                "listen_addresses = ''\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "unix_socket_permissions = 0700\n"
                "max_connections = 100\n"
                "shared_buffers = 256MB\n"
                "fsync = on\n"
                "synchronous_commit = on\n"
                "log_min_messages = warning\n"
            )
        return True

    def running(self) -> bool:
        if not self.initialized:
            return False
        result = self._run(str(find_postgres_bin() / "pg_ctl"), "-D", str(self.pgdata),
                           "status", check=False)
        return result.returncode == 0

    def start(self) -> bool:
        """Start the cluster (initialising it first); True if it was started now."""
        self.init()
        if self.running():
            return False
        self._run(
            str(find_postgres_bin() / "pg_ctl"), "-D", str(self.pgdata), "-l",
            str(self.log_file), "-w", "-t", "60", "start",
        )
        return True

    def stop(self, mode: str = "fast") -> bool:
        if not self.running():
            return False
        self._run(str(find_postgres_bin() / "pg_ctl"), "-D", str(self.pgdata), "-m", mode,
                  "-w", "stop")
        return True

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
