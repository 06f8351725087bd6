"""Idempotency retention (runtime-api.md §14, GAPS #13: the TTL is measured from the owner's creation)."""

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlane.domain.durations import parse_duration
from runlane.domain.idempotency import ACTIVE_TTL, owner_is_retained, parse_idempotency_ttl
from runlane.domain.vocabulary import ErrorCode, RunStatus
from tests.unit.domain.builders import T0, raises_code
from tests.unit.domain.strategies import PROPERTY_SETTINGS

S = RunStatus
ACTIVE = (S.QUEUED, S.SCHEDULED, S.RUNNING, S.RETRYING, S.RELEASED, S.CANCELLATION_REQUESTED)
TTLS = [None, "active", "30d", "1h", "500ms"]
offsets_ms = st.integers(min_value=-(10**11), max_value=10**11)


def retained(status: RunStatus, ttl: str | None, now: datetime) -> bool:
    return owner_is_retained(status=status, created_at=T0, ttl=ttl, now=now)


def test_parse_ttl() -> None:
    assert parse_idempotency_ttl("active").is_active_only
    assert parse_idempotency_ttl("active").value == ACTIVE_TTL == "active"
    ttl = parse_idempotency_ttl("7d")
    assert ttl.duration == parse_duration("7d")
    assert not ttl.is_active_only
    assert parse_idempotency_ttl(None).duration == parse_duration("30d")  # documented default


@pytest.mark.parametrize("value", ["0s", "forever", "Active", "ACTIVE", "1 h", "", 30, 1.5, True, [], "1w"])
def test_bad_ttls_are_rejected(value: object) -> None:
    error = raises_code(ErrorCode.VALIDATION_FAILED, parse_idempotency_ttl, value)
    assert "'active'" in error.message
    raises_code(
        ErrorCode.CONFIGURATION_INVALID, parse_idempotency_ttl, value, code=ErrorCode.CONFIGURATION_INVALID
    )


@pytest.mark.parametrize("status", ACTIVE)
@pytest.mark.parametrize("ttl", TTLS)
def test_active_owners_are_always_retained(status: RunStatus, ttl: str | None) -> None:
    assert retained(status, ttl, T0 + timedelta(days=10_000))


@pytest.mark.parametrize("ttl", TTLS)
def test_failed_owners_release_at_once(ttl: str | None) -> None:
    assert not retained(S.FAILED, ttl, T0)
    assert not retained(S.FAILED, ttl, T0 + timedelta(milliseconds=1))


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.FAILED, S.CANCELLED])
def test_active_ttl_releases_at_any_terminal_status(status: RunStatus) -> None:
    assert not retained(status, "active", T0)


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.CANCELLED])
def test_succeeded_and_cancelled_owners_are_retained_until_created_at_plus_ttl(status: RunStatus) -> None:
    expiry = T0 + timedelta(hours=1)
    assert retained(status, "1h", T0)
    assert retained(status, "1h", expiry - timedelta(milliseconds=1))
    assert not retained(status, "1h", expiry)
    assert not retained(status, "1h", expiry + timedelta(days=1))


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.CANCELLED])
def test_missing_ttl_means_thirty_days(status: RunStatus) -> None:
    expiry = T0 + timedelta(days=30)
    assert retained(status, None, expiry - timedelta(milliseconds=1))
    assert not retained(status, None, expiry)


@PROPERTY_SETTINGS
@given(
    status=st.sampled_from(RunStatus),
    ttl=st.sampled_from(TTLS),
    offset=offsets_ms,
)
def test_retention_rule(status: RunStatus, ttl: str | None, offset: int) -> None:
    now = T0 + timedelta(milliseconds=offset)
    if status in ACTIVE:
        expected = True
    elif status is S.FAILED or ttl == "active":
        expected = False
    else:
        ttl_ms = parse_duration(ttl or "30d").milliseconds
        expected = offset < ttl_ms
    assert retained(status, ttl, now) is expected
