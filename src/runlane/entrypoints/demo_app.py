"""The demo application: every job shape on the local lane, small enough to read in one sitting."""

import asyncio
from dataclasses import dataclass, field

from runlane import (
    RetryBackoff,
    RetryBackoffType,
    RetryPolicy,
    RunlaneError,
    Schedule,
    TaskContext,
    create_runlane,
    queue,
    task,
)
from runlane.application.runtime import Runlane
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.memory import create_local_lane


@dataclass
class DemoState:
    """What the handlers did, so the demo can show it next to the durable history."""

    sent_emails: list[str] = field(default_factory=list)
    flaky_calls: int = 0
    poll_checks: int = 0
    pings: int = 0


def build_demo_runtime(state: DemoState) -> Runlane:
    default = queue("default", default=True)
    emails = queue("emails")

    async def send_email(payload: dict[str, str], context: TaskContext) -> None:
        await asyncio.sleep(0.05)
        state.sent_emails.append(payload["to"])

    def flaky_report(payload: dict[str, int], context: TaskContext) -> None:
        # A sync handler (runs in the bounded thread pool) that fails twice, then succeeds.
        state.flaky_calls += 1
        if state.flaky_calls <= 2:
            raise RunlaneError(ErrorCode.TASK_FAILED, "upstream timed out", retryable=True)

    async def poll_export(payload: dict[str, str], context: TaskContext) -> object:
        state.poll_checks += 1
        if state.poll_checks < 3:
            return context.release("300ms", reason="export_not_ready", meta={"check": state.poll_checks})
        return None

    async def slow_job(payload: dict[str, int], context: TaskContext) -> None:
        # Cooperative cancellation: stop at the next signal check.
        for _ in range(200):
            if context.signal.aborted:
                return
            await asyncio.sleep(0.02)

    async def ping(payload: object, context: TaskContext) -> None:
        state.pings += 1

    return create_runlane(
        lane=create_local_lane(),
        queues=[default, emails],
        tasks={
            "send_email": task(
                "emails.send",
                run=send_email,
                queue=emails,
                idempotency_key=lambda p: f"welcome.{p['to']}",
            ),
            "flaky_report": task(
                "reports.flaky",
                run=flaky_report,
                retry=RetryPolicy(
                    max_attempts=4,
                    backoff=RetryBackoff(RetryBackoffType.EXPONENTIAL, "200ms", "1s"),
                ),
            ),
            "poll_export": task("exports.poll", run=poll_export),
            "slow_job": task("jobs.slow", run=slow_job),
            "ping": task("heartbeat.ping", run=ping, schedule=[Schedule(id="ping.every_second", every="1s")]),
        },
    )
