"""Real OS processes for the scenarios: start, signal, restart and reap them, always bounded.

``ProcessGroup`` is a context manager: on exit every process it started is sent SIGKILL and
reaped, whatever happened. Unexpected exits are recorded (``exits``), so a scenario can
assert that no worker crashed.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

PROCS = Path(__file__).resolve().parent / "procs"
REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0


class ProcessError(RuntimeError):
    """A fault process did not start, answer or stop in time."""


def write_config(directory: Path, name: str, config: dict[str, Any]) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class FaultProcess:
    """One script under ``procs/``; stdout lines are read by a thread into a queue."""

    name: str
    script: str
    args: Sequence[str]
    log_dir: Path
    popen: subprocess.Popen[str] | None = None
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    generation: int = 0
    expect_exit: bool = False  # the harness killed or stopped it: not a crash
    reported: bool = False
    ready: bool = False

    def start(self) -> None:
        self.ready = False
        self.expect_exit = False
        self.reported = False
        stderr = (self.log_dir / f"{self.name}.stderr").open("a", encoding="utf-8")
        try:
            self.popen = subprocess.Popen(
                [sys.executable, str(PROCS / self.script), *self.args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=_env(),
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        finally:
            stderr.close()
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, args=(self.popen, self.lines), daemon=True).start()

    @staticmethod
    def _pump(popen: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            lines.put(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def read_line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise ProcessError(f"{self.name}: no output within {timeout}s{self.stderr_tail()}") from None

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive and self.lines.empty():
                raise ProcessError(f"{self.name} exited before it was ready{self.stderr_tail()}")
            try:
                if self.lines.get(timeout=0.1) == "ready":
                    self.ready = True
                    return
            except queue.Empty:
                continue
        raise ProcessError(f"{self.name} not ready within {timeout}s{self.stderr_tail()}")

    def send(self, line: str) -> None:
        assert self.popen is not None and self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def terminate(self) -> None:
        """SIGTERM: the graceful stop a deployment sends."""
        self.expect_exit = True
        self.signal(signal.SIGTERM)

    def signal(self, signum: int) -> None:
        if self.alive:
            assert self.popen is not None
            os.kill(self.popen.pid, signum)

    def wait(self, timeout: float) -> int:
        assert self.popen is not None
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ProcessError(f"{self.name} did not exit within {timeout}s") from None

    def kill(self) -> None:
        """SIGKILL (delivered even to a stopped process, which never runs again), and reap."""
        if self.popen is None:
            return
        self.expect_exit = True
        if self.popen.poll() is None:
            for signum in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(self.popen.pid, signum)
                except ProcessLookupError:
                    break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()

    def stderr_tail(self, lines: int = 15) -> str:
        path = self.log_dir / f"{self.name}.stderr"
        if not path.exists():
            return ""
        tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return ("\n--- stderr of " + self.name + " ---\n" + "\n".join(tail)) if tail else ""


@dataclass
class Exit:
    name: str
    returncode: int


class ProcessGroup:
    """All fault processes of one scenario; ``close()`` kills whatever is still running."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: dict[str, FaultProcess] = {}
        self.exits: list[Exit] = []
        self.restarts = 0

    def spawn(self, name: str, script: str, *args: str, ready: bool = True) -> FaultProcess:
        process = FaultProcess(name=name, script=script, args=list(args), log_dir=self.log_dir)
        self.processes[name] = process
        process.start()
        if ready:
            process.wait_ready()
        return process

    def restart(self, name: str, *args: str, ready: bool = True) -> FaultProcess:
        """SIGKILL (if still running) and start again, with new ``args`` if given."""
        process = self.processes[name]
        process.kill()
        if args:
            process.args = list(args)
        process.generation += 1
        self.restarts += 1
        process.start()
        if ready:
            process.wait_ready()
        return process

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait for every running process that has not said ``ready`` yet (they start in parallel)."""
        for process in self.processes.values():
            if not process.ready:
                process.wait_ready(timeout)

    def reap_unexpected(self) -> list[Exit]:
        """Processes that exited on their own since the last call (crashes, poison runs)."""
        found = []
        for process in self.processes.values():
            if process.popen is None or process.reported or process.expect_exit:
                continue
            code = process.popen.poll()
            if code is not None:
                process.reported = True
                found.append(Exit(process.name, code))
        self.exits.extend(found)
        return found

    def close(self) -> None:
        for process in self.processes.values():
            process.kill()

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
