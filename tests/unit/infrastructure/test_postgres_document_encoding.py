"""The Postgres adapter's own encoders write exactly what the general encoders would."""

import json
import threading
from typing import Any

import pytest

from runlane.domain.vocabulary import RunStatus
from runlane.infrastructure.postgres.array_literals import array_literal, text_array
from runlane.infrastructure.postgres.schema import dumps_json

_REFERENCE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


@pytest.mark.parametrize(
    "value",
    [
        None,
        'a\u0000\u00e9"\\\ud800',
        1,
        -2.5,
        True,
        [],
        {},
        [1, {"b": [True, False, None]}, "x"],
        {"k": {"nested": [{"deep": "\u4e2d"}]}, "n": 10**30},
    ],
)
def test_dumps_json_is_the_reference_text(value: Any) -> None:
    assert dumps_json(value) == _REFERENCE.encode(value)


def _error(encode: Any, value: Any) -> tuple[type, str]:
    with pytest.raises((TypeError, ValueError)) as raised:
        encode(value)
    return type(raised.value), str(raised.value)


def test_dumps_json_raises_the_reference_errors_and_recovers() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    for bad in (float("nan"), {"a": float("inf")}, {"s": {1}}, cycle, {(1,): 2}):
        assert _error(dumps_json, bad) == _error(_REFERENCE.encode, bad)
        shared = {"p": 1}
        # A failed call leaves no stale circular-reference marker behind.
        assert dumps_json([shared, shared, cycle[:0]]) == '[{"p":1},{"p":1},[]]'


def test_dumps_json_in_threads() -> None:
    shared = {"payload": list(range(50))}
    results: list[str] = []

    def encode() -> None:
        results.extend(dumps_json([shared, {"again": shared}]) for _ in range(200))

    threads = [threading.Thread(target=encode) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 800
    assert set(results) == {_REFERENCE.encode([shared, {"again": shared}])}


@pytest.mark.parametrize(
    "values",
    [
        [],
        [""],
        ["a", "b"],
        ["run_1", "run_2", "{x}", "a,b"],
        ['say "hi"', "plain"],
        ["back\\slash"],
        ["a", None],
        [None, None],
        [RunStatus.QUEUED, "x"],
        [1, "a"],
    ],
)
def test_text_array_is_the_array_literal(values: list[object]) -> None:
    assert text_array(values) == array_literal(values)
