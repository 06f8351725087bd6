"""Run the real ``runlane`` console script in a subprocess, with a clean ``RUNLANE_*`` environment.

The script is the one installed next to the interpreter running the tests (``.venv/bin/runlane``).
Subprocesses run from the repository root so ``--app tests.support.apps.basic:app`` imports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[2]
BASIC_APP = "tests.support.apps.basic:app"
SCHEDULED_APP = "tests.support.apps.basic:scheduled_app"


def runlane_script() -> str:
    beside = Path(sys.executable).parent / "runlane"
    if beside.is_file():
        return str(beside)
    found = shutil.which("runlane")
    if found is None:
        raise RuntimeError("the runlane console script is not installed (pip install -e .)")
    return found


def clean_env(**settings: str) -> dict[str, str]:
    """The current environment without any RUNLANE_* variable, plus ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUNLANE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


@dataclass(frozen=True)
class CliResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def json_lines(self, stream: str = "stderr") -> list[dict[str, Any]]:
        text = self.stderr if stream == "stderr" else self.stdout
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def expect(self, code: int = 0) -> CliResult:
        assert self.returncode == code, (
            f"runlane {' '.join(self.args)} exited {self.returncode}, expected {code}\n"
            f"stdout: {self.stdout}\nstderr: {self.stderr}"
        )
        return self


def run_cli(*args: str, env: Mapping[str, str], timeout: float = 60.0) -> CliResult:
    completed = subprocess.run(
        [runlane_script(), *args],
        env=dict(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)


class CliProcess:
    """A long-running command (worker, tick loop, consumer) whose output goes to temp files."""

    def __init__(self, *args: str, env: Mapping[str, str]) -> None:
        self.args = tuple(args)
        # Files, not pipes: a chatty child must never block on a full pipe nobody reads yet.
        self._out: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed in kill())
        self._err: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(
            [runlane_script(), *args],
            env=dict(env),
            cwd=REPO_ROOT,
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def _read(self, stream: IO[str]) -> str:
        stream.flush()
        stream.seek(0)
        return stream.read()

    @property
    def stderr(self) -> str:
        return self._read(self._err)

    @property
    def stdout(self) -> str:
        return self._read(self._out)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> CliResult:
        returncode = self.process.wait(timeout=timeout)
        return CliResult(self.args, returncode, self.stdout, self.stderr)

    def kill(self) -> None:
        """Test cleanup: never leave a child running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._out.close()
        self._err.close()


def wait_until(
    predicate: Callable[[], bool], *, timeout: float, interval: float = 0.05, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def assert_one_clean_error(result: CliResult, *, contains: str, code: int = 1) -> None:
    """One line on stderr, the expected text in it, no traceback, the expected exit code."""
    result.expect(code)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert contains in lines[0], lines[0]
