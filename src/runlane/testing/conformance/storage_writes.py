"""Storage conformance: capabilities, compare-and-append, and exact round trips of what was written."""

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import fields

from runlane.domain.errors import RunlaneError
from runlane.domain.run_events import RunEvent
from runlane.domain.timestamps import add_ms
from runlane.domain.values import Environment, RunSource
from runlane.domain.vocabulary import (
    ErrorCode,
    RunEventType,
    RunSourceType,
    RunStatus,
    StorageConflictKind,
)
from runlane.ports.capabilities import StorageCapabilities
from runlane.ports.storage_commands import (
    ClaimOutboxMessages,
    GetRun,
    HeartbeatRunLease,
    ListRunEvents,
    ListRuns,
    PruneRuns,
    RunFilter,
)
from runlane.testing.conformance.storage_kit import StorageKit, expect_conflict, expect_error
from runlane.testing.run_builders import create_queued_run_data, delivery_requested_event, succeeded_event

CAPABILITY_FLAGS = (
    "claims_schedule_occurrences",
    "durable_state",
    "enforces_idempotency",
    "enforces_queue_concurrency",
    "enforces_singleton",
    "leases_runs",
    "persists_outbox",
    "process_local_state",
    "prunes_runs",
    "reads_run_history",
)


def _event_fields(event: RunEvent) -> dict[str, object]:
    return {f.name: getattr(event, f.name) for f in fields(RunEvent)}


class StorageWriteTests:
    """Scenarios 1-3 plus exact records and data fidelity."""

    # -- 1. capabilities ----------------------------------------------------------------------

    async def test_capabilities_are_exactly_the_ten_boolean_flags(self, kit: StorageKit) -> None:
        capabilities = kit.storage.capabilities
        assert isinstance(capabilities, StorageCapabilities)
        values = dataclasses.asdict(capabilities)
        assert tuple(sorted(values)) == CAPABILITY_FLAGS
        assert all(type(value) is bool for value in values.values())
        assert sorted(capabilities.to_wire()) == sorted(
            [
                "claimsScheduleOccurrences",
                "durableState",
                "enforcesIdempotency",
                "enforcesQueueConcurrency",
                "enforcesSingleton",
                "leasesRuns",
                "persistsOutbox",
                "processLocalState",
                "prunesRuns",
                "readsRunHistory",
            ]
        )

    async def test_name_is_a_non_empty_string(self, kit: StorageKit) -> None:
        assert isinstance(kit.storage.name, str)
        assert kit.storage.name

    async def test_gated_methods_raise_capability_unsupported_exactly_when_the_flag_is_false(
        self, kit: StorageKit
    ) -> None:
        capabilities = kit.storage.capabilities
        env, now = kit.environment, kit.now
        probes: dict[str, Callable[[], Awaitable[object]]] = {
            "reads_run_history": lambda: kit.storage.list_runs(ListRuns(filter=RunFilter(environment=env))),
            "prunes_runs": lambda: kit.storage.prune_runs(
                PruneRuns(environment=env, older_than=now, statuses=(RunStatus.SUCCEEDED,), limit=10)
            ),
            "persists_outbox": lambda: kit.storage.claim_outbox_messages(
                ClaimOutboxMessages(environment=env, now=now, limit=10, claim_timeout_ms=60_000)
            ),
            "leases_runs": lambda: kit.storage.claim_due_runs(kit.claim_due()),
        }
        for flag, probe in probes.items():
            if getattr(capabilities, flag):
                await probe()  # must not raise capability_unsupported
            else:
                await expect_error(probe(), ErrorCode.CAPABILITY_UNSUPPORTED)

    # -- 2. create ----------------------------------------------------------------------------

    async def test_create_persists_events_with_sequences_and_the_supplied_projection(
        self, kit: StorageKit
    ) -> None:
        data = create_queued_run_data(
            kit.new_id(), now=kit.now, environment=kit.environment, payload={"n": 1}
        )
        result = await kit.storage.append_run_events(data.append_command(kit.now))
        assert result.returned_existing is False
        assert result.run == data.run
        assert [e.sequence for e in result.events] == [1, 2]
        assert [e.type for e in result.events] == [RunEventType.CREATED, RunEventType.DELIVERY_REQUESTED]
        assert await kit.get(data.run.id) == data.run
        assert (await kit.require(data.run.id)).event_sequence == 2

    async def test_create_returns_the_exact_persisted_records(self, kit: StorageKit) -> None:
        data = create_queued_run_data(
            kit.new_id(), now=kit.now, environment=kit.environment, payload={"a": [1, 2]}, meta={"m": True}
        )
        result = await kit.storage.append_run_events(data.append_command(kit.now))
        for given, stored in zip(data.events, result.events, strict=True):
            assert _event_fields(stored) == _event_fields(given)
            assert stored.id
        assert await kit.events(data.run.id) == result.events

    async def test_event_ids_are_unique_across_runs(self, kit: StorageKit) -> None:
        ids: set[str] = set()
        for _ in range(5):
            result = await kit.create()
            ids.update(event.id for event in result.events)
        assert len(ids) == 10

    async def test_appending_continues_the_sequence(self, kit: StorageKit) -> None:
        run = (await kit.create()).run
        claimed = await kit.claim(run)
        done = await kit.append(claimed, succeeded_event(claimed, now=kit.now))
        assert [e.sequence for e in done.events] == [4]
        assert done.run.status is RunStatus.SUCCEEDED
        assert done.run.event_sequence == 4
        assert [e.sequence for e in await kit.events(run.id)] == [1, 2, 3, 4]

    async def test_create_without_delivery_request_writes_no_outbox_row(self, kit: StorageKit) -> None:
        result = await kit.create(with_delivery=False)
        assert result.outbox_message_ids == ()
        assert await kit.outbox(result.run.id) == ()

    async def test_creating_an_existing_run_is_a_sequence_conflict(self, kit: StorageKit) -> None:
        run_id = kit.new_id()
        first = await kit.create(run_id)
        await expect_conflict(kit.create(run_id), StorageConflictKind.SEQUENCE)
        assert await kit.require(run_id) == first.run
        assert len(await kit.events(run_id)) == 2
        assert len(await kit.outbox(run_id)) == 1

    async def test_appending_to_a_missing_run_is_a_sequence_conflict(self, kit: StorageKit) -> None:
        data = create_queued_run_data(
            kit.new_id(), now=kit.now, environment=kit.environment, with_delivery=False
        )
        await expect_conflict(
            kit.append(data.run, delivery_requested_event(data.run, now=kit.now)),
            StorageConflictKind.SEQUENCE,
        )
        assert await kit.get(data.run.id) is None

    # -- 3. stale sequence --------------------------------------------------------------------

    async def test_stale_sequence_conflicts_and_writes_nothing(self, kit: StorageKit) -> None:
        created = (await kit.create(with_delivery=False)).run
        moved = (await kit.request_delivery(created)).run
        stale = kit.request_delivery(created)  # built against sequence 1; storage is at 2
        await expect_conflict(stale, StorageConflictKind.SEQUENCE)
        assert await kit.require(created.id) == moved
        assert len(await kit.events(created.id)) == 2
        assert len(await kit.outbox(created.id)) == 1

    async def test_concurrent_appends_at_one_sequence_have_exactly_one_winner(self, kit: StorageKit) -> None:
        run = (await kit.create()).run
        attempts = [kit.claim(run, worker_id=f"worker_{i}") for i in range(10)]
        results = await asyncio.gather(*attempts, return_exceptions=True)
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, RunlaneError)]
        assert len(winners) == 1
        assert len(losers) == 9
        assert all(e.conflict_kind is StorageConflictKind.SEQUENCE for e in losers)
        stored = await kit.require(run.id)
        assert stored.lease is not None
        assert winners[0].lease == stored.lease
        assert len(await kit.events(run.id)) == 3

    async def test_invalid_projection_sequence_is_rejected_without_writing(self, kit: StorageKit) -> None:
        data = create_queued_run_data(kit.new_id(), now=kit.now, environment=kit.environment)
        broken = dataclasses.replace(data.run, event_sequence=5)
        command = dataclasses.replace(data.append_command(kit.now), run=broken)
        await expect_error(kit.storage.append_run_events(command), ErrorCode.INVARIANT_VIOLATION)
        assert await kit.get(data.run.id) is None

    # -- environment scoping ------------------------------------------------------------------

    async def test_another_environments_run_is_invisible(self, kit: StorageKit) -> None:
        run = (await kit.create()).run
        other = Environment(kit.environment.name + "_other")
        assert await kit.storage.get_run(GetRun(environment=other, run_id=run.id)) is None
        page = await kit.storage.list_run_events(ListRunEvents(environment=other, run_id=run.id))
        assert page.data == ()
        with_other_env = dataclasses.replace(run, environment=other)
        await expect_conflict(kit.claim(with_other_env), StorageConflictKind.SEQUENCE)

    async def test_the_same_run_id_may_exist_in_two_environments(self, kit: StorageKit) -> None:
        run_id = kit.new_id()
        first = (await kit.create(run_id, payload="first")).run
        other = Environment(kit.environment.name + "_twin")
        data = create_queued_run_data(run_id, now=kit.now, environment=other, payload="second")
        second = (await kit.storage.append_run_events(data.append_command(kit.now))).run
        assert (await kit.require(run_id)).payload == "first"
        assert await kit.storage.get_run(GetRun(environment=other, run_id=run_id)) == second
        assert first.payload == "first"

    # -- data fidelity ------------------------------------------------------------------------

    async def test_awkward_strings_are_stored_and_read_back_unchanged(self, kit: StorageKit) -> None:
        awkward = [
            "quote'single\"double`back",
            "semi;colon -- comment /* block */",
            "dollar$$quote$tag$",
            "unicode ünïcødé 漢字 🚀 \u200b",
            "x" * 10_240,
        ]
        for index, text in enumerate(awkward):
            run_id = f"run_{index}_{text[:40]}"
            result = await kit.create(
                run_id,
                task_id=f"task.{text[:60]}",
                queue=f"queue_{text[:60]}",
                idempotency_key=text,
                singleton_key=text,
                concurrency_key=text,
                payload={"text": text, text[:100]: text},
                meta={"note": text},
                trace_carrier={"traceparent": text},
            )
            stored = await kit.require(run_id)
            assert stored == result.run
            assert stored.idempotency_key == text
            assert stored.singleton_key == text
            assert stored.concurrency_key == text
            assert stored.payload == {"text": text, text[:100]: text}
            assert (await kit.events(run_id))[0].meta == {"note": text}
            (row,) = await kit.outbox(run_id)
            assert row.message.trace_carrier == {"traceparent": text}

    async def test_payload_json_round_trips_exactly(self, kit: StorageKit) -> None:
        payload = {
            "nested": {"list": [1, [2, [3, {"deep": None}]]], "empty": {}, "empty_list": []},
            "big": 2**63 + 12345,
            "negative_big": -(2**70),
            "floats": [0.1, 1.5, 1e300, -2.5e-300, 123456789.123456],
            "bools": [True, False],
            "unicode": "ü漢🚀",
            "nul": "before\u0000after",
            "escapes": 'line\nbreak\ttab\\slash"quote',
        }
        run = (await kit.create(payload=payload)).run
        stored = await kit.require(run.id)
        assert stored.payload == payload
        assert type(stored.payload["big"]) is int
        assert type(stored.payload["floats"][1]) is float
        assert (await kit.events(run.id))[0].payload == payload

    async def test_scalar_payloads_round_trip(self, kit: StorageKit) -> None:
        for payload in (None, 0, "text", [1, "two"], 3.25, False):
            run = (await kit.create(payload=payload)).run
            assert (await kit.require(run.id)).payload == payload

    async def test_timestamps_keep_millisecond_precision(self, kit: StorageKit) -> None:
        kit.clock.set(add_ms(kit.now, 123))
        run = (await kit.create()).run
        stored = await kit.require(run.id)
        assert stored.created_at == kit.now
        assert stored.created_at.microsecond == 123_000
        assert stored.created_at.tzinfo is not None
        assert stored.created_at.utcoffset() is not None
        (row,) = await kit.outbox(run.id)
        assert row.available_at == kit.now
        assert row.message.requested_at == kit.now

    async def test_source_and_lease_fields_round_trip(self, kit: StorageKit) -> None:
        parent = (await kit.create()).run
        source = RunSource(type=RunSourceType.RERUN, source_run_id=parent.id)
        run = (await kit.create(source=source)).run
        claimed = await kit.claim(run, worker_id="worker_fidelity", lease_duration="45s")
        stored = await kit.require(run.id)
        assert stored.source == source
        assert stored.lease == claimed.lease
        assert stored.lease is not None
        assert stored.lease.worker_id == "worker_fidelity"
        assert stored.lease.expires_at == add_ms(kit.now, 45_000)

    async def test_heartbeat_is_not_an_event(self, kit: StorageKit) -> None:
        run = await kit.claim((await kit.create()).run)
        await kit.storage.heartbeat_run_lease(
            HeartbeatRunLease(
                environment=kit.environment,
                run_id=run.id,
                worker_id="worker_a",
                expected_sequence=run.event_sequence,
                heartbeat_at=kit.now,
                expires_at=add_ms(kit.now, 60_000),
            )
        )
        assert len(await kit.events(run.id)) == run.event_sequence
        assert (await kit.require(run.id)).event_sequence == run.event_sequence
