"""A throwaway PostgreSQL cluster for tests and local development.

``PostgresCluster`` runs ``initdb`` into a fresh temporary directory and starts the server with
``pg_ctl``. The server listens on 127.0.0.1 only, on a free port, with its unix socket inside the
temporary directory, and with durability switched off for speed. ``stop()`` shuts it down and
removes the directory, so nothing is left behind.

``initdb`` and ``postgres`` refuse to run as root. When this process is root, the server commands
run as an unprivileged user instead: the ``postgres`` system user when it exists, otherwise a
dedicated system user (``runlane-pg``) that is created on first use. The temporary directory is
owned by that user. When this process is not root, everything runs as the current user.

Usage::

    with PostgresCluster() as pg:
        engine = create_engine(pg.dsn)  # postgresql+psycopg://runlane@127.0.0.1:PORT/runlane
        psycopg.connect(pg.libpq_dsn)  # postgresql://runlane@127.0.0.1:PORT/runlane

For local use, ``python -m tests.support.pg_cluster`` (or ``scripts/pg-cluster``) starts a cluster,
prints its DSN and keeps it running until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

__all__ = ["PostgresCluster", "PostgresClusterError", "find_pg_bindir", "running_cluster"]

PREFERRED_MAJOR = 15
HOST = "127.0.0.1"
DEFAULT_USER = "runlane"
DEFAULT_DATABASE = "runlane"
FALLBACK_SYSTEM_USER = "runlane-pg"
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")

# Durability is pointless for a cluster that is deleted after the tests.
FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class PostgresClusterError(RuntimeError):
    """The cluster could not be created, started, restarted or stopped."""


def _has_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in REQUIRED_BINARIES)


def _major_of(bindir: Path) -> int:
    match = re.search(r"/postgresql/(\d+)/bin$", str(bindir))
    return int(match.group(1)) if match else -1


def find_pg_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Looked up in order: ``$RUNLANE_PG_BINDIR``, the directory of ``pg_ctl`` on ``PATH`` (symlinks
    resolved), then ``/usr/lib/postgresql/*/bin`` with PostgreSQL 15 first and newer before older.
    """
    candidates: list[Path] = []
    override = os.environ.get("RUNLANE_PG_BINDIR")
    if override:
        candidates.append(Path(override))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
        candidates.append(Path(on_path).parent)
    debian = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    debian.sort(key=lambda p: (_major_of(p) != PREFERRED_MAJOR, -_major_of(p)))
    candidates.extend(debian)
    for bindir in candidates:
        if _has_binaries(bindir):
            return bindir
    raise PostgresClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or under "
        "/usr/lib/postgresql/*/bin; install them with `apt-get install -y postgresql` "
        "(scripts/test does this) or set RUNLANE_PG_BINDIR"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _ensure_system_user() -> pwd.struct_passwd:
    """The unprivileged account that runs the server when we are root."""
    for name in ("postgres", FALLBACK_SYSTEM_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            FALLBACK_SYSTEM_USER,
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    try:  # a concurrent test process may have created it first
        return pwd.getpwnam(FALLBACK_SYSTEM_USER)
    except KeyError:
        raise PostgresClusterError(
            f"running as root and could not create system user {FALLBACK_SYSTEM_USER!r}: "
            f"{result.stdout}{result.stderr}"
        ) from None


def _world_traversable(path: Path) -> bool:
    """Whether another (unprivileged) user can reach entries inside ``path``."""
    return all(part.stat().st_mode & 0o001 for part in (path, *path.parents))


class PostgresCluster:
    """A private PostgreSQL cluster in a temporary directory, on 127.0.0.1 and a free port."""

    def __init__(
        self,
        *,
        user: str = DEFAULT_USER,
        database: str = DEFAULT_DATABASE,
        settings: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
        command_timeout: float = 120.0,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.user = user
        self.database = database
        self.host = HOST
        self.port = 0
        self.settings: dict[str, str] = {**FAST_SETTINGS, **(settings or {})}
        self.start_timeout = start_timeout
        self.command_timeout = command_timeout
        self._parent_dir = Path(base_dir) if base_dir is not None else None
        self._bindir: Path | None = None
        self._base: Path | None = None
        self._run_as: pwd.struct_passwd | None = None
        self._running = False

    # ----------------------------------------------------------------- public API

    @property
    def dsn(self) -> str:
        """SQLAlchemy URL: ``postgresql+psycopg://user@127.0.0.1:port/database``."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def libpq_dsn(self) -> str:
        """libpq / psycopg URL: ``postgresql://user@127.0.0.1:port/database``."""
        return self.libpq_dsn_for(self.database)

    def libpq_dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    @property
    def running(self) -> bool:
        return self._running

    @property
    def base_dir(self) -> Path:
        if self._base is None:
            raise PostgresClusterError("cluster not started")
        return self._base

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "sock"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    def start(self) -> PostgresCluster:
        """initdb, start the server, wait until it accepts connections, create the database."""
        if self._running:
            return self
        # Safety net: a process that exits without calling stop() still shuts the server down.
        atexit.register(self.stop)
        try:
            self._bindir = find_pg_bindir()
            self._prepare_base_dir()
            self._initdb()
            self._start_on_free_port()
            self._wait_ready()
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: drops every connection; same port, same data."""
        if not self._running:
            raise PostgresClusterError("cluster not running")
        result = self._pg_ctl("restart", "-m", "fast", "-l", str(self.log_file))
        if result.returncode != 0:
            raise PostgresClusterError(f"pg_ctl restart failed:\n{result.stdout}\n{self._log_tail()}")
        self._wait_ready()

    def stop(self) -> None:
        """``pg_ctl stop -m fast`` (escalating if needed) and remove the temporary directory."""
        atexit.unregister(self.stop)
        base = self._base
        if base is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._shutdown()
        finally:
            self._running = False
            self._base = None
            shutil.rmtree(base, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<PostgresCluster {state} {self.libpq_dsn if self._running else ''}>"

    # ----------------------------------------------------------------- internals

    def _prepare_base_dir(self) -> None:
        if os.geteuid() == 0:
            self._run_as = _ensure_system_user()
        parent = self._parent_dir or Path(tempfile.gettempdir())
        if self._run_as is not None and not _world_traversable(parent):
            parent = Path("/tmp")
        parent.mkdir(parents=True, exist_ok=True)
        base = Path(tempfile.mkdtemp(prefix="runlane-pg-", dir=parent))
        self._base = base
        (base / "sock").mkdir(mode=0o700)
        if self._run_as is not None:
            for path in (base, base / "sock"):
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _run(self, args: Sequence[str], *, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run a server command, as the unprivileged user when we are root.

        Output goes to a temporary file, not a pipe: ``pg_ctl start`` leaves a server process
        behind, and a pipe it inherited would never reach EOF.
        """
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("PG") and key not in ("LANG", "LANGUAGE") and not key.startswith("LC_")
        }
        env.update({"LC_ALL": "C", "TZ": "UTC"})
        if self._run_as is not None:
            env.update(HOME=self._run_as.pw_dir, USER=self._run_as.pw_name, LOGNAME=self._run_as.pw_name)
        with tempfile.TemporaryFile(mode="w+") as out:
            try:
                proc = subprocess.run(
                    list(args),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self.base_dir,
                    env=env,
                    timeout=timeout or self.command_timeout,
                    check=False,
                    # As root: drop to the unprivileged account (setgroups/setgid/setuid in the child).
                    user=self._run_as.pw_uid if self._run_as else None,
                    group=self._run_as.pw_gid if self._run_as else None,
                    extra_groups=[] if self._run_as else None,
                )
            except subprocess.TimeoutExpired as exc:
                out.seek(0)
                raise PostgresClusterError(f"timed out after {exc.timeout}s: {args}\n{out.read()}") from exc
            out.seek(0)
            return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), None)

    def _bin(self, name: str) -> str:
        assert self._bindir is not None
        return str(self._bindir / name)

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        wait_s = str(max(1, int(self.start_timeout)))
        return self._run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", wait_s, *args],
            timeout=self.start_timeout + 30,
        )

    def _initdb(self) -> None:
        result = self._run(
            [
                self._bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        if result.returncode != 0:
            raise PostgresClusterError(f"initdb failed ({result.returncode}):\n{result.stdout}")
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as fh:
            fh.write("\n# runlane test cluster\ninclude = 'runlane.conf'\n")
        # Only loopback TCP, trust auth. initdb's default pg_hba also has ::1; drop it, since
        # the server does not listen there anyway.
        (self.data_dir / "pg_hba.conf").write_text(
            "# TYPE  DATABASE  USER  ADDRESS        METHOD\n"
            "local   all       all                  trust\n"
            "host    all       all   127.0.0.1/32   trust\n",
            encoding="utf-8",
        )

    def _write_settings(self) -> None:
        lines = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            **{key: _quote(value) for key, value in self.settings.items()},
        }
        path = self.data_dir / "runlane.conf"
        path.write_text("".join(f"{key} = {value}\n" for key, value in lines.items()), encoding="utf-8")
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _start_on_free_port(self, attempts: int = 5) -> None:
        """Start on a free port; another process may grab it between probe and bind, so retry."""
        last = ""
        for _ in range(attempts):
            self.port = _free_port()
            self._write_settings()
            result = self._pg_ctl("start", "-l", str(self.log_file))
            if result.returncode == 0:
                self._running = True
                return
            last = f"{result.stdout}\n{self._log_tail()}"
            if "could not bind" not in last and "already in use" not in last:
                break
        raise PostgresClusterError(f"pg_ctl start failed:\n{last}")

    def _wait_ready(self) -> None:
        """Poll until a real connection succeeds; bounded by ``start_timeout``."""
        deadline = time.monotonic() + self.start_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.libpq_dsn_for("postgres"), connect_timeout=2) as conn:
                    conn.execute("select 1")
                return
            except psycopg.Error as exc:
                last = exc
                time.sleep(0.1)
        raise PostgresClusterError(
            f"server not ready after {self.start_timeout}s: {last}\n{self._log_tail()}"
        )

    def _create_database(self) -> None:
        with psycopg.connect(self.libpq_dsn_for("postgres"), autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(f'create database "{self.database}"')

    def _shutdown(self) -> None:
        data = self.data_dir
        for mode in ("fast", "immediate"):
            try:
                result = self._pg_ctl("stop", "-m", mode)
            except PostgresClusterError:
                continue
            if result.returncode == 0 or not (data / "postmaster.pid").exists():
                return
        # Last resort: the postmaster's pid is the first line of postmaster.pid.
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except (OSError, PostgresClusterError):
            return "(no server log)"
        return "server log (tail):\n" + "\n".join(text.splitlines()[-lines:])


def _quote(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.\-]+", value):
        return value
    return "'" + value.replace("'", "''") + "'"


@contextlib.contextmanager
def running_cluster(**kwargs: Any) -> Iterator[PostgresCluster]:
    """``with running_cluster() as pg: ...`` — started on entry, stopped and deleted on exit."""
    cluster = PostgresCluster(**kwargs)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.pg_cluster",
        description="Start a throwaway PostgreSQL cluster on 127.0.0.1, print its DSN, "
        "and keep it running until Ctrl-C or SIGTERM. Its files are deleted on exit.",
    )
    parser.add_argument("--user", default=DEFAULT_USER, help="superuser role (trust auth)")
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="database to create")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    with PostgresCluster(user=args.user, database=args.database) as pg:
        print(f"DATABASE_URL={pg.dsn}")
        print(f"LIBPQ_DSN={pg.libpq_dsn}")
        print(f"psql '{pg.libpq_dsn}'")
        print(f"data directory: {pg.data_dir} (deleted on exit)")
        print("running; press Ctrl-C (or send SIGTERM) to stop", flush=True)
        while not stop.wait(1.0):
            pass
        print("stopping...", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
