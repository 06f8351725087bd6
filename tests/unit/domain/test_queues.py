"""Queue definitions (runtime-api.md §2): validated at definition time with configuration_invalid."""

from datetime import timedelta
from typing import Any

import pytest

from runlane.domain.durations import parse_duration
from runlane.domain.queues import QueueDefinition, queue
from runlane.domain.vocabulary import ErrorCode
from tests.unit.domain.builders import raises_code

CONFIG = ErrorCode.CONFIGURATION_INVALID


def test_defaults() -> None:
    definition = queue("emails")
    assert definition == QueueDefinition(
        "emails", default=False, concurrency_limit=None, dispatch_timeout=None
    )
    assert not definition.bounded
    assert definition.to_wire() == {"name": "emails", "default": False}


def test_bounded_queue_wire_shape() -> None:
    definition = queue("exports", default=True, concurrency_limit=2, dispatch_timeout="30s")
    assert definition.bounded
    assert definition.dispatch_timeout == parse_duration("30s")
    assert definition.to_wire() == {
        "name": "exports",
        "default": True,
        "concurrencyLimit": 2,
        "dispatchTimeout": "30s",
    }


def test_dispatch_timeout_accepts_timedeltas() -> None:
    definition = queue("q", concurrency_limit=1, dispatch_timeout=timedelta(minutes=1))  # type: ignore[arg-type]
    assert definition.dispatch_timeout is not None
    assert definition.dispatch_timeout.milliseconds == 60_000


def test_queue_definitions_are_frozen_values() -> None:
    assert queue("q") == queue("q")
    assert hash(queue("q")) == hash(queue("q"))
    with pytest.raises(AttributeError):
        queue("q").name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"name": "emails:eu"},
        {"name": None},
        {"name": 5},
        {"name": "q", "default": "yes"},
        {"name": "q", "default": 1},
        {"name": "q", "concurrency_limit": 0},
        {"name": "q", "concurrency_limit": -1},
        {"name": "q", "concurrency_limit": True},
        {"name": "q", "concurrency_limit": 1.5},
        {"name": "q", "concurrency_limit": "2"},
        {"name": "q", "dispatch_timeout": "30s"},  # requires concurrency_limit
        {"name": "q", "concurrency_limit": 1, "dispatch_timeout": "0s"},
        {"name": "q", "concurrency_limit": 1, "dispatch_timeout": "30 s"},
        {"name": "q", "concurrency_limit": 1, "dispatch_timeout": 30},
    ],
)
def test_bad_options_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    name = kwargs.pop("name")
    raises_code(CONFIG, queue, name, **kwargs)
    raises_code(CONFIG, QueueDefinition, name, **kwargs)
