"""``runlane.testing``: clocks, wait helpers, run fixtures, doubles and adapter conformance suites.

Development-only: it imports pytest (for the suites), which the runtime itself never needs.
"""

from runlane.testing.capabilities import CapabilityOverrideStorage, storage_with_capabilities
from runlane.testing.clocks import (
    ControlledClock,
    StepClock,
    create_controlled_clock,
    create_step_clock,
)
from runlane.testing.conformance import LaneConformance, StorageConformance, TransportConformance
from runlane.testing.fixtures import (
    ClaimedRunFixture,
    QueuedRunFixture,
    ScheduledRunFixture,
    SucceededRunFixture,
    append_queued_run,
    append_run_data,
    append_scheduled_run,
    append_succeeded_run,
    claim_queued_run,
    get_lease,
)
from runlane.testing.recording import LifecycleRecorder, RecordingAdapter, RecordingTransport
from runlane.testing.run_builders import (
    TEST_ENVIRONMENT,
    TEST_QUEUE,
    TEST_TASK_ID,
    TEST_WORKER_ID,
    RunData,
    create_queued_run_data,
    create_scheduled_run_data,
    create_succeeded_run_data,
    next_run_data,
    plan_for,
)
from runlane.testing.waiting import (
    get_at,
    list_run_event_types,
    list_run_events,
    wait_for_condition,
    wait_for_run_event,
    wait_for_run_status,
)

__all__ = [
    "TEST_ENVIRONMENT",
    "TEST_QUEUE",
    "TEST_TASK_ID",
    "TEST_WORKER_ID",
    "CapabilityOverrideStorage",
    "ClaimedRunFixture",
    "ControlledClock",
    "LaneConformance",
    "LifecycleRecorder",
    "QueuedRunFixture",
    "RecordingAdapter",
    "RecordingTransport",
    "RunData",
    "ScheduledRunFixture",
    "StepClock",
    "StorageConformance",
    "SucceededRunFixture",
    "TransportConformance",
    "append_queued_run",
    "append_run_data",
    "append_scheduled_run",
    "append_succeeded_run",
    "claim_queued_run",
    "create_controlled_clock",
    "create_queued_run_data",
    "create_scheduled_run_data",
    "create_step_clock",
    "create_succeeded_run_data",
    "get_at",
    "get_lease",
    "list_run_event_types",
    "list_run_events",
    "next_run_data",
    "plan_for",
    "storage_with_capabilities",
    "wait_for_condition",
    "wait_for_run_event",
    "wait_for_run_status",
]
