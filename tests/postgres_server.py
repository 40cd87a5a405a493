"""A real PostgreSQL server for tests: Debian's binaries, a throw-away cluster, a free port.

`initdb` refuses to run as root, so as root the cluster is made and run by the
`postgres` user (`runuser`) in a temporary directory that user owns. Each test
gets a database of its own (`Postgres.new_database`); the server is started
once per test session and removed at its end.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .mqtt_broker import free_port


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin/ (Debian keeps them in /usr/lib/postgresql/N/)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def why_unavailable() -> str | None:
    """None when a server can be started here, else the reason (for pytest.skip)."""
    if postgres_bin() is None:
        return "PostgreSQL is not installed (scripts/system-deps.sh installs it as root)"
    if os.getuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: initdb refuses root"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    return None


@dataclass
class Postgres:
    """A PostgreSQL cluster in a temporary directory, listening on loopback only."""

    port: int = field(default_factory=free_port)
    root: Path = field(init=False)
    databases: int = 0

    def _as_owner(self, *args: str) -> list[str]:
        if os.getuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def start(self) -> None:
        """initdb and start; on failure the directory is removed and the server's log shown."""
        try:
            self._start()
        except subprocess.CalledProcessError as e:
            log = self.root / "server.log"
            detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start: {e.stderr!r}\n{detail}") from None

    def _start(self) -> None:
        bin_dir = postgres_bin()
        assert bin_dir is not None
        self.root = Path(tempfile.mkdtemp(prefix="suitctl-pg-"))
        if os.getuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        subprocess.run(
            self._as_owner(
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            cwd=self.root,
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            self._as_owner(
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(self.root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
            cwd=self.root,
        )

    def stop(self) -> None:
        bin_dir = postgres_bin()
        assert bin_dir is not None
        subprocess.run(
            self._as_owner(
                str(bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "stop"
            ),
            check=False,
            capture_output=True,
            cwd=self.root,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        self.databases += 1
        name = f"studio_{self.databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
