"""A PostgreSQL server a test owns: its own data directory, loopback port and socket
directory, driven with pg_ctl so it can be stopped and started again under load.

PostgreSQL refuses to run as root, and the tests run as root here and in CI: as root,
initdb, pg_ctl and the server run as the `postgres` system user (runuser), in a temporary
directory it owns. Whatever happens, `close()` stops the server (pg_ctl stop -m immediate,
then SIGKILL of the postmaster and its children) and removes the directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from services.devtools.stores import free_port

PG_CTL_TIMEOUT_S = 30
RUNUSER = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin") or "runuser"

# fsync=off is safe for what the tests prove: `pg_ctl stop -m fast|immediate` stops the
# server, not the OS, so every WAL record a commit wrote is in the page cache and the next
# start replays it (an immediate stop is a crash recovery). Only an OS crash could lose it.
# synchronous_commit stays on, stated explicitly: off would let the server acknowledge a
# commit whose WAL a stop -m immediate then loses, which is exactly what must not happen.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "on",
    "shared_buffers": "'32MB'",
    "max_connections": "200",
    "logging_collector": "off",
}


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian layout), else pg_ctl's on
    the PATH."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)],
    )
    on_path = shutil.which("pg_ctl")
    if candidates:
        return candidates[-1].parent
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError("no PostgreSQL server: nothing in /usr/lib/postgresql/*/bin, no pg_ctl on PATH")


class PrivatePostgres:
    """initdb + pg_ctl start on a free port; `stop_server`/`start_server` in between;
    `close` always."""

    def __init__(self, log_dir: Path | None = None) -> None:
        self.bin_dir = postgres_bin_dir()
        self.port = free_port()
        self.log_dir = log_dir
        self.root: Path | None = None
        self._as_postgres = os.geteuid() == 0

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None
        return self.root / "sockets"

    @property
    def server_log(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> PrivatePostgres:
        """Create the cluster and start it; on any failure stop and remove it again."""
        try:
            self._create_cluster()
            self.start_server()
        except BaseException:
            self.close()
            raise
        return self

    def start_server(self) -> None:
        """pg_ctl start, waiting until the server accepts connections."""
        self._pg_ctl(
            "start", "-w", "-t", str(PG_CTL_TIMEOUT_S), "-l", str(self.server_log),
        )

    def stop_server(self, mode: str) -> None:
        """pg_ctl stop -m fast|immediate, waiting until the server is gone."""
        self._pg_ctl("stop", "-m", mode, "-w", "-t", str(PG_CTL_TIMEOUT_S))

    def close(self) -> None:
        """Stop the server however it is, keep its log, remove the directory. Idempotent."""
        if self.root is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.SubprocessError, OSError):
                    self.stop_server("immediate")
            self._kill_leftover_postmaster()
            if self.log_dir is not None and self.server_log.exists():
                shutil.copy(self.server_log, self.log_dir / f"postgres-{self.port}.log")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _create_cluster(self) -> None:
        # Not under pytest's tmp_path: that tree is root's and closed to other users.
        self.root = Path(tempfile.mkdtemp(prefix="fulfillment-pg-"))
        self.socket_dir.mkdir()
        self.server_log.touch()
        if self._as_postgres:
            owner = pwd.getpwnam("postgres")
            for path in (self.root, self.socket_dir, self.server_log):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
            "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync",
        )
        settings = {
            **SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
        }
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("".join(f"{name} = {value}\n" for name, value in settings.items()))

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args)

    def _run(self, *args: str) -> None:
        command = [RUNUSER, "-u", "postgres", "--", *args] if self._as_postgres else list(args)
        result = subprocess.run(
            command, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}, cwd="/",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=PG_CTL_TIMEOUT_S + 15,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}): "
                f"{result.stdout.decode(errors='replace')[-2000:]}{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError, AssertionError):
            return "\nserver log:\n" + self.server_log.read_text(errors="replace")[-2000:]
        return ""

    def _kill_leftover_postmaster(self) -> None:
        """SIGKILL the postmaster and its children (each in a session of its own), only if
        that pid still runs this data directory's server."""
        pid_file = self.data_dir / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pid_file.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if str(self.data_dir) not in cmdline:
                return
            for target in [pid, *_children(pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(target, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ")"
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                children.append(int(stat.parent.name))
    return children
