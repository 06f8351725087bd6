"""Which queues ``runlane worker`` consumes: --queues, --profile, or all."""

from __future__ import annotations

import pytest

from runlane import RunlaneError
from runlane.entrypoints.worker import resolve_queues
from runlane.infrastructure.memory import create_local_lane
from tests.support.apps import basic


def test_queue_selection() -> None:
    runtime = basic.app.build_runtime(create_local_lane())
    assert resolve_queues(runtime, basic.app, (), None) is None
    assert [q.name for q in resolve_queues(runtime, basic.app, ("emails",), None) or ()] == ["emails"]
    assert [q.name for q in resolve_queues(runtime, basic.app, (), "mail") or ()] == ["emails"]
    with pytest.raises(RunlaneError, match="--queues: reports not registered"):
        resolve_queues(runtime, basic.app, ("reports",), None)
    with pytest.raises(RunlaneError, match="Unknown worker profile 'nope'"):
        resolve_queues(runtime, basic.app, (), "nope")
    with pytest.raises(RunlaneError, match="mutually exclusive"):
        resolve_queues(runtime, basic.app, ("emails",), "mail")


def test_runs_commands_name_unknown_queues_as_bad_input() -> None:
    """``runs list --queue``: the same check, reported as validation_failed under its own option."""
    from runlane import ErrorCode
    from runlane.entrypoints.cli_runs import _queues

    runtime = basic.app.build_runtime(create_local_lane())
    assert _queues(runtime, ()) is None
    assert [q.name for q in _queues(runtime, ("emails",)) or ()] == ["emails"]
    with pytest.raises(RunlaneError, match="--queue: nope, reports not registered") as info:
        _queues(runtime, ("nope", "reports"))
    assert info.value.code is ErrorCode.VALIDATION_FAILED
