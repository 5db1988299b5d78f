"""A real, throw-away PostgreSQL server for the tests: Debian's server binaries, a fresh cluster in a temporary
folder, listening only on a Unix socket in that folder (no TCP port, nothing another process could reach by
accident), stopped and deleted when the test session ends.

Why a real server and not a mock: what the PostgreSQL sink promises (one transaction, COPY, ON CONFLICT, a
rollback when the connection dies) is the server's behaviour, which only a server shows. Run one yourself the same
way: ``python tests/postgres_server.py`` prints its URL and stops it on Enter.

Root: ``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` user (``nobody`` where
that user does not exist) and its binaries run through ``runuser``; the folder is handed to that user. The folder is
made with :func:`tempfile.mkdtemp` (in /tmp), not in pytest's own temporary folder: pytest keeps that one readable
by its owner only, and a Unix socket path must stay under 108 bytes.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = ("PostgreSQL's server binaries (initdb, pg_ctl) were not found on PATH nor under "
                "/usr/lib/postgresql/*/bin: install them with `apt-get install postgresql` (as root, or with sudo)")


@dataclass(frozen=True)
class PostgresServer:
    """A running server: ``url`` connects to its ``postgres`` database as its superuser."""

    folder: Path
    user: str

    @property
    def url(self) -> str:
        return f"postgresql:///postgres?host={self.folder}&user={self.user}"


def server_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (PATH first, then the newest Debian version), or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _os_user() -> str | None:
    """The non-root user the server runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a server for the block, stop it and delete its folder afterwards. Raises with the install command when
    the binaries are missing."""
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError(INSTALL_HINT)
    os_user = _os_user()
    as_user = ["runuser", "-u", os_user, "--"] if os_user else []
    folder = Path(tempfile.mkdtemp(prefix="clin-pg-"))
    data, log = folder / "data", folder / "server.log"
    if os_user:
        shutil.chown(folder, user=os_user)
    superuser = "postgres"

    def run(*command: str) -> None:
        done = subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"`{' '.join(command)}` failed: {done.stderr.strip()[-2000:]}\n{tail}")

    started = False
    try:
        run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", superuser, "--no-sync",
            "-E", "UTF8", "--locale", "C")
        options = f"-c listen_addresses='' -c unix_socket_directories='{folder}' -c fsync=off"
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        started = True
        yield PostgresServer(folder, superuser)
    finally:
        if started:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    with postgres_server() as server:
        print(server.url, flush=True)
        input("PostgreSQL is running; press Enter to stop it and delete its folder. ")
