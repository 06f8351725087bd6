"""The public import paths of python-mapping §1 exist and work end to end."""

import subprocess
import sys
import textwrap

import runlane
import runlane.infrastructure.memory as memory
import runlane.testing as testing

RUNLANE_NAMES = (
    "create_runlane",
    "task",
    "queue",
    "Schedule",
    "RetryPolicy",
    "RetryBackoff",
    "RunlaneError",
    "create_lane",
    "parse_duration",
    "project_run_events",
    "RunRecord",
    "RunSummary",
    "RunEvent",
    "RunEventRecord",
    "RunFailure",
    "DeliveryMessage",
    "Environment",
    "Actor",
    "TaskContext",
    "TriggerRunResult",
    "DeliveryResult",
    "TickResult",
    # every enum of python-mapping §2
    "RunStatus",
    "RunStatusClassification",
    "RunEventType",
    "RunSourceType",
    "TriggerOutcomeType",
    "ErrorCode",
    "StorageConflictKind",
    "TriggerDispatchMode",
    "WakeupPublishOutcomeType",
    "OutboxMessageStatus",
    "ScheduleType",
    "ScheduleOccurrenceStatus",
    "RetryBackoffType",
    "ActorType",
    "WorkerMode",
    "DeliveryResultType",
    "DeliveryIgnoredReason",
    "RunAttemptStatus",
    "RunEventSortField",
    "RunSortField",
    "SortDirection",
)

TESTING_NAMES = (
    "create_controlled_clock",
    "create_step_clock",
    "wait_for_condition",
    "wait_for_run_status",
    "wait_for_run_event",
    "list_run_event_types",
    "get_at",
    "append_queued_run",
    "append_scheduled_run",
    "append_succeeded_run",
    "claim_queued_run",
    "get_lease",
)


def test_runlane_exports_the_documented_surface() -> None:
    missing = [name for name in RUNLANE_NAMES if not hasattr(runlane, name)]
    assert missing == []
    assert set(RUNLANE_NAMES) <= set(runlane.__all__)


def test_memory_path_exports_local_adapters() -> None:
    for name in ("create_local_storage", "create_local_transport", "create_local_lane"):
        assert callable(getattr(memory, name))
    lane = memory.create_local_lane()
    assert lane.capabilities.storage.leases_runs is True
    assert lane.capabilities.production_durable is False
    # two local storages share nothing
    assert memory.create_local_storage() is not memory.create_local_storage()


def test_testing_path_exports_helpers() -> None:
    missing = [name for name in TESTING_NAMES if not hasattr(testing, name)]
    assert missing == []


async def test_public_paths_work_end_to_end() -> None:
    """A runtime built only from public paths triggers, executes and is inspectable with runlane.testing."""
    clock = testing.create_controlled_clock()
    seen: list[object] = []

    async def handler(payload: object, context: runlane.TaskContext) -> None:
        seen.append(payload)

    default = runlane.queue("default", default=True)
    greet = runlane.task("greet", run=handler)
    runtime = runlane.create_runlane(
        lane=memory.create_local_lane(), queues=[default], tasks={"greet": greet}, clock=clock
    )
    async with runtime:
        result = await runtime.trigger(runtime.tasks.greet, {"name": "ada"})
        assert result.outcome is runlane.TriggerOutcomeType.CREATED
        executed = await runtime.execute_next()
        assert executed is not None
        assert executed.status is runlane.RunStatus.SUCCEEDED
        assert seen == [{"name": "ada"}]
        types = await testing.list_run_event_types(runtime, result.run.id)
        assert list(types) == [
            runlane.RunEventType.CREATED,
            runlane.RunEventType.DELIVERY_REQUESTED,
            runlane.RunEventType.LEASE_CLAIMED,
            runlane.RunEventType.SUCCEEDED,
        ]

        second = await runtime.trigger(greet, {"name": "bob"})
        claimed = await testing.claim_queued_run(
            runtime.lane, clock, second.run.id, "30s", environment=runtime.environment
        )
        assert claimed.run.status is runlane.RunStatus.RUNNING
        assert (await testing.get_lease(runtime.lane, second.run.id, environment=runtime.environment)) == (
            claimed.lease
        )


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_import_runlane_does_not_load_database_or_aws_clients() -> None:
    result = _run_python(
        """
        import sys
        import runlane
        import runlane.infrastructure.memory
        heavy = sorted(
            name for name in sys.modules
            if name.split(".")[0] in {"sqlalchemy", "psycopg", "psycopg2", "boto3", "botocore", "aiobotocore"}
        )
        print(",".join(heavy))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
