"""JSON safety: payloads and meta must survive storage and the wire exactly."""

import json
import math
from collections import OrderedDict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given

from runlane.domain.json_values import (
    MAX_JSON_DEPTH,
    ensure_json_object,
    ensure_json_value,
    ensure_string_map,
)
from runlane.domain.vocabulary import ErrorCode
from tests.unit.domain.builders import raises_code
from tests.unit.domain.strategies import PROPERTY_SETTINGS, json_values


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@PROPERTY_SETTINGS
@given(json_values)
def test_plain_json_is_accepted_and_survives_a_json_round_trip(value: Any) -> None:
    checked = ensure_json_value(value)
    assert checked == value
    assert json.loads(json.dumps(checked, allow_nan=False)) == checked


def test_tuples_become_lists_and_the_result_is_a_copy() -> None:
    original: dict[str, Any] = {"a": (1, 2), "b": {"c": [3]}}
    checked = ensure_json_value(original)
    assert checked == {"a": [1, 2], "b": {"c": [3]}}
    checked["b"]["c"].append(4)
    assert original["b"]["c"] == [3]


def test_shared_but_acyclic_references_are_fine() -> None:
    shared = [1, 2]
    assert ensure_json_value({"a": shared, "b": shared}) == {"a": [1, 2], "b": [1, 2]}


def test_mapping_subclasses_are_plain_objects() -> None:
    assert ensure_json_value(OrderedDict(a=1)) == {"a": 1}


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (math.nan, "$"),
        (math.inf, "$"),
        (-math.inf, "$"),
        ({"a": [1, math.nan]}, ".a[1]"),
        ({"x": float("inf")}, ".x"),
    ],
)
def test_non_finite_numbers_are_rejected(value: Any, path: str) -> None:
    error = raises_code(ErrorCode.VALIDATION_FAILED, ensure_json_value, value)
    assert error.meta == {"field": "payload", "path": path}
    assert "NaN" in error.message


@pytest.mark.parametrize("value", ["\ud800", "ok\udfffok", ["\ud83d"], {"k": "\udc00"}, {"\ud800": 1}])
def test_lone_surrogates_are_rejected(value: Any) -> None:
    error = raises_code(ErrorCode.VALIDATION_FAILED, ensure_json_value, value)
    assert "surrogate" in error.message


def test_paired_surrogates_as_real_characters_are_fine() -> None:
    assert ensure_json_value("emoji \U0001f600") == "emoji \U0001f600"


@pytest.mark.parametrize("key", [1, None, 1.5, ("a",), True])
def test_non_string_keys_are_rejected(key: Any) -> None:
    error = raises_code(ErrorCode.VALIDATION_FAILED, ensure_json_value, {"ok": {key: 1}})
    assert error.meta == {"field": "payload", "path": ".ok"}


def test_cycles_are_rejected() -> None:
    looped: list[Any] = [1]
    looped.append(looped)
    error = raises_code(ErrorCode.VALIDATION_FAILED, ensure_json_value, looped)
    assert "cycles" in error.message
    mapping: dict[str, Any] = {}
    mapping["self"] = {"again": mapping}
    raises_code(ErrorCode.VALIDATION_FAILED, ensure_json_value, mapping)


def test_depth_is_bounded() -> None:
    assert ensure_json_value(nested(MAX_JSON_DEPTH)) == nested(MAX_JSON_DEPTH)
    error = raises_code(ErrorCode.VALIDATION_FAILED, ensure_json_value, nested(MAX_JSON_DEPTH + 1))
    assert "deeper" in error.message
    # Far beyond the recursion limit: still a RunlaneError, not a RecursionError.
    raises_code(ErrorCode.VALIDATION_FAILED, ensure_json_value, nested(10_000))


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        frozenset({1}),
        object(),
        b"bytes",
        bytearray(b"x"),
        Decimal("1.5"),
        datetime(2025, 1, 1, tzinfo=UTC),
        1 + 2j,
        {"nested": {"set": {1}}},
        [lambda: None],
    ],
)
def test_non_json_types_are_rejected(value: Any) -> None:
    error = raises_code(ErrorCode.VALIDATION_FAILED, ensure_json_value, value)
    assert "not JSON" in error.message


def test_field_and_code_are_reported() -> None:
    error = raises_code(
        ErrorCode.INVARIANT_VIOLATION,
        ensure_json_value,
        {"a": {1}},
        field="meta",
        code=ErrorCode.INVARIANT_VIOLATION,
    )
    assert error.meta == {"field": "meta", "path": ".a"}
    assert error.message.startswith("meta.a ")


def test_json_objects_must_be_mappings() -> None:
    assert ensure_json_object({"a": [1]}) == {"a": [1]}
    for value in ([1], "x", None, 1):
        error = raises_code(ErrorCode.VALIDATION_FAILED, ensure_json_object, value)
        assert error.meta == {"field": "meta"}
    raises_code(ErrorCode.VALIDATION_FAILED, ensure_json_object, {"a": math.nan})


def test_string_maps() -> None:
    carrier = {"traceparent": "00-abc-def-01"}
    checked = ensure_string_map(carrier)
    assert checked == carrier
    assert checked is not carrier
    for value in ({"a": 1}, {1: "a"}, ["a"], "a", {"a": None}, {"a": "\ud800"}):
        raises_code(ErrorCode.VALIDATION_FAILED, ensure_string_map, value)
