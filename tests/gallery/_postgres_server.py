"""A throwaway PostgreSQL server for the tests: initdb + pg_ctl in a temporary folder.

The server runs as an unprivileged user (initdb and the server refuse to run as root):
when the suite runs as root, as Debian's ``postgres`` user (which the ``postgresql``
package creates) or else ``nobody``, through ``runuser``. It listens on 127.0.0.1 at a free
port, with password (SCRAM) authentication and no Unix socket, and runs with
``fsync=off``: the tests kill clients, never the machine, and it saves seconds.

``GRACEFUL_TEST_POSTGRES`` set to a libpq connection string (a CI service container, say)
makes the tests use that server instead; it must let its user create schemas.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PASSWORD = "graceful-test-password"
USER = "graceful"


def find_bin(name: str) -> str | None:
    """``name`` from Debian's versioned folder (newest first), else from PATH."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
    return shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A PostgreSQL server in ``folder``, started by :meth:`start`, removed by :meth:`stop`."""

    def __init__(self) -> None:
        missing = [b for b in ("initdb", "pg_ctl") if find_bin(b) is None]
        if missing:
            raise RuntimeError(
                f"PostgreSQL's {' and '.join(missing)} not found (looked in "
                "/usr/lib/postgresql/*/bin and PATH): run `make postgres` (apt-get install "
                "postgresql) or set GRACEFUL_TEST_POSTGRES to a server's connection string"
            )
        self.initdb, self.pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        self.folder = Path(tempfile.mkdtemp(prefix="graceful-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = "postgres"
            try:
                pwd.getpwnam(user)
            except KeyError:
                user = "nobody"
            self.prefix = ["runuser", "-u", user, "--"]
            self.folder.chmod(0o755)
            shutil.chown(self.folder, user=user)
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.prefix:
            shutil.chown(pwfile, user=self.prefix[2])
        self._run(
            self.initdb, "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
            "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()

    def _run(self, *argv: str | None) -> None:
        result = subprocess.run(
            [*self.prefix, *map(str, argv)], capture_output=True, text=True, check=False
        )
        if result.returncode:
            raise RuntimeError(f"{argv[0]} failed: {result.stdout}{result.stderr}")

    def conninfo(self, password: str = PASSWORD, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} password={password} dbname={dbname}"

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
            "-c fsync=off -c full_page_writes=off -c max_connections=60"
        )
        self._run(
            self.pg_ctl, "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
