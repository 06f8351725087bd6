"""What a scenario reports: one summary line of figures, plus the checks that must all hold.

``scenario=<name>: runs=N lost=0 duplicated=0 <other figures> seconds=S``. A scenario records every
check; ``verify()`` raises ``ScenarioFailed`` listing all that failed, so one run shows every
problem at once, with the figures that go with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


class ScenarioFailed(AssertionError):
    pass


@dataclass
class Figures:
    scenario: str
    runs: int = 0
    lost: int = 0
    duplicated: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def add(self, **figures: object) -> None:
        self.extra.update(figures)

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok

    def line(self) -> str:
        parts = [f"runs={self.runs}", f"lost={self.lost}", f"duplicated={self.duplicated}"]
        parts += [f"{key}={_format(value)}" for key, value in self.extra.items()]
        parts.append(f"seconds={self.seconds:.1f}")
        return f"scenario={self.scenario}: " + " ".join(parts)

    def finish(self) -> Figures:
        self.seconds = time.monotonic() - self.started
        self.check(self.lost == 0, f"{self.lost} run(s) lost")
        self.check(self.duplicated == 0, f"{self.duplicated} run(s) executed or recorded twice")
        return self

    def verify(self) -> None:
        if self.failures:
            raise ScenarioFailed(self.line() + "\n  - " + "\n  - ".join(self.failures))


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict):
        return ",".join(f"{k}:{_format(v)}" for k, v in value.items()) or "-"
    return str(value)


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.2,
    on_tick: Callable[[], object] | None = None,
) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; ``on_tick`` runs between polls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if on_tick is not None:
            on_tick()
        time.sleep(interval)
    return condition()
