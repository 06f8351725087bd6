"""Ids: non-empty strings without ':'; the code depends on the boundary (definition vs call)."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlane.domain.errors import RunlaneError
from runlane.domain.ids import (
    IdKind,
    as_id,
    as_optional_id,
    new_event_id,
    new_outbox_message_id,
    new_run_id,
    new_worker_id,
)
from runlane.domain.vocabulary import ErrorCode
from tests.unit.domain.builders import raises_code
from tests.unit.domain.strategies import PROPERTY_SETTINGS


@pytest.mark.parametrize(
    "value", ["emails.welcome", "quickbooks_invoices_user_123", "a", "run_0f3a", "x#y/z"]
)
def test_valid_ids_are_returned_unchanged(value: str) -> None:
    assert as_id(IdKind.TASK, value) is value


@pytest.mark.parametrize("value", ["emails:welcome", "quickbooks:invoices:user_123", ":", "a:", ":a"])
def test_colons_are_rejected(value: str) -> None:
    error = raises_code(ErrorCode.VALIDATION_FAILED, as_id, IdKind.TASK, value)
    assert "':'" in error.message
    assert error.meta == {"kind": "task"}


def test_empty_is_rejected() -> None:
    error = raises_code(ErrorCode.VALIDATION_FAILED, as_id, IdKind.QUEUE, "")
    assert error.meta == {"kind": "queue"}


@pytest.mark.parametrize("value", [None, 1, 1.5, b"run", ["run"], True])
def test_non_strings_are_rejected(value: object) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, as_id, IdKind.RUN, value)


@pytest.mark.parametrize("value", ["", "a:b", 7])
def test_definition_time_callers_get_configuration_invalid(value: object) -> None:
    raises_code(
        ErrorCode.CONFIGURATION_INVALID, as_id, IdKind.QUEUE, value, code=ErrorCode.CONFIGURATION_INVALID
    )


def test_unknown_kinds_are_used_as_labels() -> None:
    error = raises_code(ErrorCode.VALIDATION_FAILED, as_id, "tenant", "")
    assert error.meta == {"kind": "tenant"}


def test_optional_ids() -> None:
    assert as_optional_id(IdKind.SINGLETON_KEY, None) is None
    assert as_optional_id(IdKind.SINGLETON_KEY, "k") == "k"
    raises_code(ErrorCode.VALIDATION_FAILED, as_optional_id, IdKind.SINGLETON_KEY, "a:b")


@pytest.mark.parametrize(
    ("factory", "prefix"),
    [
        (new_run_id, "run_"),
        (new_worker_id, "worker_"),
        (new_event_id, "evt_"),
        (new_outbox_message_id, "outbox_"),
    ],
)
def test_generated_ids_are_valid_unique_and_prefixed(factory: object, prefix: str) -> None:
    assert callable(factory)
    generated = {factory() for _ in range(200)}
    assert len(generated) == 200
    for value in generated:
        assert re.fullmatch(re.escape(prefix) + "[0-9a-f]{32}", value)
        assert as_id(IdKind.RUN, value) == value


@PROPERTY_SETTINGS
@given(st.text())
def test_any_string_is_an_id_exactly_when_non_empty_and_colon_free(value: str) -> None:
    if value and ":" not in value:
        assert as_id(IdKind.CONCURRENCY_KEY, value) == value
    else:
        with pytest.raises(RunlaneError) as excinfo:
            as_id(IdKind.CONCURRENCY_KEY, value)
        assert excinfo.value.code is ErrorCode.VALIDATION_FAILED
