"""Test side of the process scripts: start them, read their JSON lines with deadlines, always kill.

``processes(tmp_path)`` yields a ``ProcessGroup``; every process it started is killed (SIGKILL, after
a SIGCONT in case a test stopped it) when the block ends, whatever happened. Each read has a
timeout; a script that exits or reports ``error`` fails the test with the tail of its stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql

from tests.integration.postgres.helpers import migrate, scratch_schema
from tests.integration.postgres.procs.race_app import proof_tables_sql

PROCS_DIR = Path(__file__).resolve().parent
REPO_ROOT = PROCS_DIR.parents[3]

Message = dict[str, Any]


class ScriptFailed(AssertionError):
    """A script exited, reported an error, or did not say what the test waited for in time."""


class ScriptProcess:
    def __init__(self, name: str, script: str, args: Sequence[str], log_dir: Path) -> None:
        self.name = name
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO_ROOT), env.get("PYTHONPATH"))))
        env["PYTHONUNBUFFERED"] = "1"
        self.stderr_path = log_dir / f"{name}.stderr"
        self._stderr: IO[str] = self.stderr_path.open("w+", encoding="utf-8")
        self.popen = subprocess.Popen(
            [sys.executable, str(PROCS_DIR / script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
            cwd=REPO_ROOT,
            env=env,
        )
        self.received: list[Message] = []
        self._lines: queue.Queue[Message | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"{name}-stdout", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                message = {"event": "raw", "line": line.rstrip("\n")}
            self._lines.put(message)
        self._lines.put(None)

    def send(self, command: str) -> None:
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write(command + "\n")
            self.popen.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise ScriptFailed(f"{self.name}: could not send {command!r}\n{self.stderr_tail()}") from exc

    def expect(self, event: str, timeout: float) -> Message:
        """The next message named ``event`` (earlier ones of other kinds are kept in ``received``)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ScriptFailed(
                    f"{self.name}: no {event!r} within {timeout}s; got {self.received[-5:]}\n"
                    f"{self.stderr_tail()}"
                )
            try:
                message = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if message is None:
                self._lines.put(None)  # stay at EOF for later calls
                raise ScriptFailed(
                    f"{self.name}: exited ({self.popen.poll()}) before {event!r}; got "
                    f"{self.received[-5:]}\n{self.stderr_tail()}"
                )
            self.received.append(message)
            if message.get("event") == event:
                return message
            if message.get("event") in ("error", "watchdog_expired"):
                raise ScriptFailed(f"{self.name}: {message}\n{self.stderr_tail()}")

    def of(self, event: str) -> list[Message]:
        """Messages named ``event`` received so far."""
        return [message for message in self.received if message.get("event") == event]

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ScriptFailed(f"{self.name}: still running after {timeout}s\n{self.stderr_tail()}") from exc

    def kill(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)  # a stopped process must run to die cleanly
                self.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=10)
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._stderr.close()

    def stderr_tail(self, lines: int = 30) -> str:
        try:
            text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no stderr)"
        return f"{self.name} stderr (tail):\n" + "\n".join(text.splitlines()[-lines:])


class ProcessGroup:
    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self.members: list[ScriptProcess] = []

    def start(self, name: str, script: str, *args: str) -> ScriptProcess:
        process = ScriptProcess(name, script, args, self._log_dir)
        self.members.append(process)
        return process

    def kill_all(self) -> None:
        for process in self.members:
            process.kill()


@contextlib.contextmanager
def processes(log_dir: Path) -> Iterator[ProcessGroup]:
    group = ProcessGroup(log_dir)
    try:
        yield group
    finally:
        group.kill_all()


def script_args(libpq_dsn: str, schema: str, scenario: str, *extra: str) -> list[str]:
    return ["--dsn", libpq_dsn, "--schema", schema, "--scenario", scenario, *extra]


@contextlib.contextmanager
def prepared_schema(libpq_dsn: str) -> Iterator[str]:
    """A fresh migrated schema with the handlers' proof tables; dropped afterwards."""
    with scratch_schema(libpq_dsn, create=False) as schema:
        migrate(libpq_dsn, schema)
        with psycopg.connect(libpq_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(proof_tables_sql(schema))
        yield schema


def fetch(
    libpq_dsn: str, statement: str, schema: str | None = None, params: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    """Run ``statement`` (``{schema}`` in it becomes the quoted schema name) on a new connection."""
    query: sql.SQL | sql.Composed = sql.SQL(statement)
    if schema is not None:
        query = sql.SQL(statement).format(schema=sql.Identifier(schema))
    with psycopg.connect(libpq_dsn, autocommit=True, connect_timeout=10) as conn:
        return conn.execute(query, params).fetchall()


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.1, what: str) -> float:
    """Poll ``condition`` until true; returns the seconds it took, fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started
