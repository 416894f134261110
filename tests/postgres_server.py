"""A throwaway PostgreSQL server for tests, on 127.0.0.1 and a free port, in a temp folder.

The server binaries come from Debian's `postgresql` package (.ci/run installs it); initdb refuses to run as
root, so the cluster belongs to the `postgres` user when the tests run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "nightjar-test"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str

    def env(self, prefix: str, dbname: str) -> dict[str, str]:
        """Connection settings as nightjar reads them (NIGHTJAR_PG_* or DAGSTER_PG_*)."""
        db_key = "DBNAME" if prefix == "NIGHTJAR_PG" else "DB"
        return {
            f"{prefix}_HOST": self.host,
            f"{prefix}_PORT": str(self.port),
            f"{prefix}_USER": self.user,
            f"{prefix}_PASSWORD": self.password,
            f"{prefix}_{db_key}": dbname,
        }


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def running_postgres(databases: list[str]) -> Iterator[PostgresServer]:
    binaries = postgres_bin()
    assert binaries is not None, "PostgreSQL server binaries are missing: apt-get install postgresql (see .ci/run)"
    # Not under pytest's tmp_path: it is private to root, and the server runs as `postgres`.
    folder = Path(tempfile.mkdtemp(prefix="nightjar-pg-"))
    folder.chmod(0o755)
    data = folder / "pgdata"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password_file = folder / "password"
    password_file.write_text(PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(password_file, "postgres", "postgres")
    subprocess.run(
        _as_owner(
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                "nightjar",
                "-A",
                "scram-sha-256",
                f"--pwfile={password_file}",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _as_owner(
            [
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "server.log"),
                "-w",
                "-o",
                f"-p {port} -h 127.0.0.1 -k {folder} -c fsync=off",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        server = PostgresServer("127.0.0.1", port, "nightjar", PASSWORD)
        import psycopg2

        conn = psycopg2.connect(host=server.host, port=port, user=server.user, password=PASSWORD, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            for name in databases:
                cur.execute(f"CREATE DATABASE {name}")
        conn.close()
        yield server
    finally:
        subprocess.run(
            _as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)
