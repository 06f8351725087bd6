"""CONTRACT_DEFAULTS: the values of shared/spec/defaults.md, in one immutable object."""

import dataclasses

import pytest

from runlane.domain.defaults import CONTRACT_DEFAULTS
from runlane.domain.durations import parse_duration


def test_documented_and_proposed_values() -> None:
    d = CONTRACT_DEFAULTS
    assert d.dispatch.on_trigger == "eager"
    assert d.run.new_event_sequence == 0
    assert d.actor.system == "system"
    assert d.actor.operator == "operator"
    assert d.queue == "default"
    assert (d.retry.backoff_type, d.retry.backoff_delay, d.retry.backoff_max_delay) == (
        "exponential",
        "30s",
        "5m",
    )
    assert d.lease.duration == "30s"
    assert d.lease.heartbeat_divisor == 3
    assert d.maintenance.per_phase_limit == 100
    assert d.maintenance.outbox_max_publish_attempts == 10
    assert (d.maintenance.outbox_retry_delay, d.maintenance.outbox_retry_max_delay) == ("1s", "5m")
    assert d.pruning.batch_limit == 500
    assert (d.pagination.limit, d.pagination.max_limit) == (50, 500)
    assert d.idempotency.ttl == "30d"
    assert (d.worker.concurrency, d.worker.poll_interval) == (1, "1s")
    assert d.environment == "default"


def test_every_duration_default_parses() -> None:
    d = CONTRACT_DEFAULTS
    for value in (
        d.retry.backoff_delay,
        d.retry.backoff_max_delay,
        d.lease.duration,
        d.maintenance.outbox_claim_timeout,
        d.maintenance.outbox_retry_delay,
        d.maintenance.outbox_retry_max_delay,
        d.idempotency.ttl,
        d.worker.poll_interval,
    ):
        assert parse_duration(value).milliseconds > 0


def test_defaults_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONTRACT_DEFAULTS.queue = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONTRACT_DEFAULTS.pagination.limit = 10  # type: ignore[misc]
