"""pytest runs the CI-sized fault scenarios; one PostgreSQL cluster (and moto) for all of them.

Each scenario's summary line is printed at the end of the session under "fault suite figures".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.environment import FaultWorld, fault_world
from tests.faults.reporting import LINES

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if LINES:
        terminalreporter.section("fault suite figures")
        for line in LINES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def world() -> Iterator[FaultWorld]:
    with fault_world() as started:
        yield started
