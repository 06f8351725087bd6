"""Publish outbox rows through the transport and record each indexed outcome."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from runlane.application.runtime_context import RuntimeContext
from runlane.domain.defaults import CONTRACT_DEFAULTS
from runlane.domain.durations import parse_duration
from runlane.domain.errors import RunlaneError
from runlane.domain.retry_policy import RetryBackoff
from runlane.domain.timestamps import add_ms
from runlane.domain.values import OutboxFailureRecord
from runlane.domain.vocabulary import ErrorCode, OutboxMessageStatus, RetryBackoffType
from runlane.ports.storage_commands import (
    AppendRunEventsResult,
    ClaimOutboxMessages,
    CompleteOutboxMessages,
    OutboxCompletion,
    OutboxMessage,
)
from runlane.ports.transport import (
    FailedWakeupPublish,
    PublishedWakeup,
    PublishWakeupAttempt,
    PublishWakeups,
    validate_publish_result,
)

_TRANSPORT_CODES = {ErrorCode.TRANSPORT_UNAVAILABLE, ErrorCode.TRANSPORT_PUBLISH_FAILED}
# GAPS #17: failed publishes retry with exponential delay from 1s capped at 5m; 10 failures dead-letter.
_OUTBOX_BACKOFF = RetryBackoff(
    RetryBackoffType.EXPONENTIAL,
    parse_duration(CONTRACT_DEFAULTS.maintenance.outbox_retry_delay),
    parse_duration(CONTRACT_DEFAULTS.maintenance.outbox_retry_max_delay),
)
_CLAIM_TIMEOUT_MS = parse_duration(CONTRACT_DEFAULTS.maintenance.outbox_claim_timeout).milliseconds


@dataclass(frozen=True, slots=True)
class DispatchReport:
    published: tuple[PublishedWakeup, ...] = ()
    failed: tuple[FailedWakeupPublish, ...] = ()
    dead_lettered: int = 0
    by_outbox_id: Mapping[str, PublishedWakeup | FailedWakeupPublish] = field(default_factory=dict)


async def publish_outbox(
    ctx: RuntimeContext, *, now: datetime, limit: int, ids: tuple[str, ...] | None = None
) -> DispatchReport:
    """Claim due rows (or exactly ``ids``), publish them, and store the outcomes.

    A transport error (``transport_*`` codes) marks every claimed row failed and returns normally, so
    triggers still succeed and ``tick`` retries later; any other error marks the rows and re-raises.
    """
    storage = ctx.lane.storage
    if ids is not None and not ids:
        return DispatchReport()
    claimed = await storage.claim_outbox_messages(
        ClaimOutboxMessages(
            environment=ctx.environment, now=now, limit=limit, claim_timeout_ms=_CLAIM_TIMEOUT_MS, ids=ids
        )
    )
    return await publish_claimed(ctx, claimed, now=now)


async def publish_created(
    ctx: RuntimeContext, results: Sequence[AppendRunEventsResult], *, now: datetime
) -> DispatchReport:
    """Eager dispatch of the outbox rows these appends (made with ``claim_outbox``) created.

    Storage normally wrote the due rows claimed for us (``claimed_outbox``), or published their
    wakeups in its own commit (``published_outbox``: only reported here). A storage adapter that
    does not honour ``claim_outbox`` leaves them pending instead; those are claimed here by id, as
    before the flag existed, so eager dispatch never silently turns into "wait for tick".
    """
    in_commit = already_published(results)
    claimed = tuple(row for result in results for row in result.claimed_outbox)
    pending = tuple(
        row_id
        for result in results
        if not result.claimed_outbox and not result.published_outbox and result.run.is_due(now)
        for row_id in result.outbox_message_ids
    )
    reports = [in_commit, await publish_claimed(ctx, claimed, now=now)]
    if pending:
        reports.append(await publish_outbox(ctx, now=now, limit=len(pending), ids=pending))
    return _merged(reports)


def already_published(results: Sequence[AppendRunEventsResult]) -> DispatchReport:
    """The wakeups storage sent (or will send) with the appends' own commit: nothing to publish."""
    rows = [row for result in results for row in result.published_outbox]
    if not rows:
        return DispatchReport()
    outcomes = {row.id: PublishedWakeup(published_at=row.published_at or row.updated_at) for row in rows}
    return DispatchReport(published=tuple(outcomes.values()), by_outbox_id=outcomes)


def _merged(reports: Sequence[DispatchReport]) -> DispatchReport:
    filled = [report for report in reports if report.published or report.failed or report.dead_lettered]
    if len(filled) <= 1:
        return filled[0] if filled else DispatchReport()
    return DispatchReport(
        published=tuple(o for report in filled for o in report.published),
        failed=tuple(o for report in filled for o in report.failed),
        dead_lettered=sum(report.dead_lettered for report in filled),
        by_outbox_id={k: v for report in filled for k, v in report.by_outbox_id.items()},
    )


async def publish_claimed(
    ctx: RuntimeContext, claimed: tuple[OutboxMessage, ...], *, now: datetime
) -> DispatchReport:
    """Publish rows this process holds claimed (by a claim, or written claimed by its own append)."""
    if not claimed:
        return DispatchReport()
    storage = ctx.lane.storage
    command = PublishWakeups(
        attempts=tuple(PublishWakeupAttempt(outbox_message_id=row.id, message=row.message) for row in claimed)
    )
    raised: BaseException | None = None
    try:
        result = validate_publish_result(command, await ctx.lane.transport.publish_wakeups(command))
        outcomes = list(result.outcomes)
    except Exception as exc:
        error = exc if isinstance(exc, RunlaneError) else None
        record = OutboxFailureRecord(
            code=error.code if error else ErrorCode.INTERNAL_ERROR,
            message=error.message if error else "Transport publish raised an unexpected error.",
            occurred_at=now,
            retryable=error.retryable if error else True,
            meta={"exceptionType": type(exc).__name__},
        )
        outcomes = [FailedWakeupPublish(error=record) for _ in claimed]
        if error is None or error.code not in _TRANSPORT_CODES:
            raised = exc
    completions = []
    published: list[PublishedWakeup] = []
    failed: list[FailedWakeupPublish] = []
    dead = 0
    for row, outcome in zip(claimed, outcomes, strict=True):
        if isinstance(outcome, PublishedWakeup):
            published.append(outcome)
            completions.append(
                OutboxCompletion(
                    id=row.id,
                    claim_token=row.claim_token or "",
                    status=OutboxMessageStatus.PUBLISHED,
                    at=now,
                    provider_message_id=outcome.provider_message_id,
                )
            )
            continue
        failed.append(outcome)
        completion = _failed_completion(row, outcome.error, now)
        dead += completion.status is OutboxMessageStatus.DEAD_LETTERED
        completions.append(completion)
    await storage.complete_outbox_messages(
        CompleteOutboxMessages(environment=ctx.environment, completions=tuple(completions))
    )
    for row, outcome in zip(claimed, outcomes, strict=True):
        if isinstance(outcome, FailedWakeupPublish):
            ctx.log(
                30, "wakeup publish failed", run_id=row.run_id, queue=row.queue, code=outcome.error.code.value
            )
    if raised is not None:
        raise raised
    return DispatchReport(
        published=tuple(published),
        failed=tuple(failed),
        dead_lettered=dead,
        by_outbox_id={row.id: outcome for row, outcome in zip(claimed, outcomes, strict=True)},
    )


def _failed_completion(row: OutboxMessage, error: OutboxFailureRecord, now: datetime) -> OutboxCompletion:
    give_up = not error.retryable or row.attempts >= CONTRACT_DEFAULTS.maintenance.outbox_max_publish_attempts
    return OutboxCompletion(
        id=row.id,
        claim_token=row.claim_token or "",
        status=OutboxMessageStatus.DEAD_LETTERED if give_up else OutboxMessageStatus.FAILED,
        at=now,
        error=error,
        next_attempt_at=None if give_up else add_ms(now, _OUTBOX_BACKOFF.delay_ms(max(1, row.attempts))),
    )
