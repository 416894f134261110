"""A local Spark Connect server from the installed pyspark: for this machine, tests and trying the Spark engine.

In production ``NIGHTJAR_SPARK_REMOTE`` points at a cluster's Spark Connect endpoint and none of this runs. Here,
``python -m resources.spark_server start|stop|status`` (``make spark-up`` / ``make spark-down``) runs pyspark's
own ``sbin/start-connect-server.sh`` in local mode on this machine's cores, with:

- every port on 127.0.0.1 (gRPC, driver, block manager) and the web UI off: by default Spark binds other addresses;
- the Hive catalog (a Derby metastore), the table files and Spark's scratch files under one folder (default
  ``$NIGHTJAR_DATA_DIR/spark``), owned by this one server: an embedded Derby admits one JVM, so every client
  (dbt, nightjar, a notebook) goes through the server;
- dynamic partition overwrite, so ``INSERT OVERWRITE`` replaces only the days it writes;
- the project's Python for Python UDFs (``PYSPARK_PYTHON``): scoring runs the registered model in the server's
  workers.

Java 17 comes from Debian (``apt-get install openjdk-17-jre-headless``). Settings come from the environment:
``NIGHTJAR_SPARK_REMOTE`` (``sc://127.0.0.1:15002``: the port the server listens on), ``NIGHTJAR_SPARK_DIR``,
``NIGHTJAR_SPARK_DRIVER_MEMORY`` (``2g``), ``NIGHTJAR_SPARK_CORES`` (all of this machine's).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_REMOTE = "sc://127.0.0.1:15002"
START_TIMEOUT_SECONDS = 300.0


class SparkServerError(RuntimeError):
    """The local server could not be started (no Java, port taken, it exited): the message says which."""


@dataclass(frozen=True)
class LocalSparkServer:
    """Where a local server keeps its state and listens. ``folder`` holds the metastore, the tables
    (``warehouse/``), the server's log and its pid file."""

    folder: Path
    port: int
    driver_memory: str = "2g"
    cores: int | None = None

    @classmethod
    def from_env(cls) -> LocalSparkServer:
        remote = os.environ.get("NIGHTJAR_SPARK_REMOTE", DEFAULT_REMOTE)
        parsed = urlparse(remote)
        if parsed.scheme != "sc" or parsed.hostname not in ("127.0.0.1", "localhost"):
            raise SparkServerError(
                f"NIGHTJAR_SPARK_REMOTE={remote!r}: a local server listens on sc://127.0.0.1:<port>; a cluster's "
                "endpoint is started by the cluster, not here"
            )
        data_dir = Path(os.environ.get("NIGHTJAR_DATA_DIR", Path(__file__).resolve().parents[1] / "data"))
        folder = Path(os.environ.get("NIGHTJAR_SPARK_DIR", data_dir / "spark"))
        cores = os.environ.get("NIGHTJAR_SPARK_CORES")
        return cls(
            folder=folder.resolve(),
            port=parsed.port or 15002,
            driver_memory=os.environ.get("NIGHTJAR_SPARK_DRIVER_MEMORY", "2g"),
            cores=int(cores) if cores else None,
        )

    @property
    def remote(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.folder / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    @property
    def temp_dir(self) -> Path:
        """The server's scratch folder: emptied at each start (the server is stopped then, so nothing uses it)."""
        return self.folder / "tmp"

    def conf(self) -> dict[str, str]:
        """The server's settings (static ones cannot be set from a client)."""
        return {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.port),
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.host": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.sql.catalogImplementation": "hive",
            "spark.sql.warehouse.dir": str(self.folder / "warehouse"),
            # Spark's scratch files (block manager, shipped code) and the JVM's (Hive's per-session folders) in
            # this server's folder, not the machine's /tmp, where a server stopped by SIGKILL leaves them for good.
            "spark.local.dir": str(self.temp_dir),
            "spark.driver.extraJavaOptions": (
                f'-Dderby.system.home="{self.folder / "metastore"}" -Djava.io.tmpdir="{self.temp_dir}"'
            ),
            "spark.sql.sources.partitionOverwriteMode": "dynamic",
            "spark.sql.session.timeZone": "UTC",
            # pandas frames arrive and leave as Arrow batches, not row by row
            "spark.sql.execution.arrow.pyspark.enabled": "true",
        }

    def running_pid(self) -> int | None:
        """The server's pid if the pid file names a live process."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        except PermissionError:
            return pid
        return pid

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> str:
        """Start the server (or find it running); returns its ``sc://`` address once it accepts connections."""
        if self.running_pid() is not None and _listening(self.port):
            return self.remote
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise SparkServerError("no Java: install Debian's openjdk-17-jre-headless (apt-get install ...)")
        if _listening(self.port):
            raise SparkServerError(f"port {self.port} on 127.0.0.1 is taken by another program")
        import pyspark

        spark_home = Path(pyspark.__file__).parent
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.running_pid() is None:  # what a killed server left
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.temp_dir.mkdir(exist_ok=True)
        command = [str(spark_home / "sbin" / "start-connect-server.sh"), "--wait", "--master", self._master()]
        command += ["--driver-memory", self.driver_memory]
        for key, value in self.conf().items():
            command += ["--conf", f"{key}={value}"]
        env = {
            **os.environ,
            "SPARK_HOME": str(spark_home),
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(self.folder / "logs"),
            "SPARK_PID_DIR": str(self.folder),
        }
        env.pop("SPARK_REMOTE", None)  # the server is not a client
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                command, cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SparkServerError(f"the Spark Connect server exited ({process.returncode}); see {self.log_file}")
            if _listening(self.port):
                return self.remote
            time.sleep(0.5)
        self.stop()
        raise SparkServerError(f"the Spark Connect server did not listen on {self.port} in {timeout:.0f} s")

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the server and its JVM (its process group); True if one was running."""
        pid = self.running_pid()
        if pid is None:
            return False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.2)
            if not _alive(pid):
                break
        self.pid_file.unlink(missing_ok=True)
        return True

    def _master(self) -> str:
        return f"local[{self.cores}]" if self.cores else "local[*]"


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our own child, not yet waited for) is dead
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return True


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    action = args[0] if args else "status"
    server = LocalSparkServer.from_env()
    if action == "start":
        print(f"Spark Connect server at {server.start()} (state in {server.folder}, log {server.log_file})")
    elif action == "stop":
        print("stopped" if server.stop() else "no server was running")
    elif action == "status":
        pid = server.running_pid()
        print(f"running at {server.remote}, pid {pid}" if pid and _listening(server.port) else "not running")
    else:
        raise SystemExit(f"usage: python -m resources.spark_server start|stop|status (not {action!r})")


if __name__ == "__main__":
    main()
