"""The SQS transport: one SQS message per outbox row, sent with ``SendMessageBatch``.

It never decides state and never uses SQS delays: storage decides when work is due, the transport
only wakes a consumer. Every attempt gets exactly one outcome, in input order.
"""

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runlane.domain.errors import RunlaneError, configuration_invalid
from runlane.domain.queues import QueueDefinition
from runlane.domain.values import OutboxFailureRecord
from runlane.domain.vocabulary import ErrorCode, SqsFifoDeduplication
from runlane.infrastructure.sqs.envelope import create_sqs_wakeup_body
from runlane.infrastructure.sqs.fifo_tokens import deduplication_id, message_group_id
from runlane.infrastructure.sqs.provider_errors import (
    SqsOperation,
    describe_request_id,
    error_meta,
    get_queue_url_error,
    publish_error,
)
from runlane.infrastructure.sqs.queue_binding import SqsQueueBinding, is_http_url
from runlane.infrastructure.sqs.signing import WakeupSigner
from runlane.ports.capabilities import TransportCapabilities
from runlane.ports.clock import SYSTEM_CLOCK, Clock
from runlane.ports.transport import (
    FailedWakeupPublish,
    PublishedWakeup,
    PublishWakeupAttempt,
    PublishWakeups,
    PublishWakeupsResult,
    WakeupPublishOutcome,
    validate_publish_command,
)

MAX_BATCH_SIZE = 10
REJECTED_MESSAGE = "SQS rejected wakeup publish."


@dataclass(slots=True)
class _Entry:
    index: int
    entry_id: str
    attempt: PublishWakeupAttempt
    binding: SqsQueueBinding


class SqsTransport:
    """A ``TransportAdapter`` over a boto3 SQS client; build it with :func:`sqs_transport`."""

    def __init__(
        self,
        *,
        client: Any,
        bindings: tuple[SqsQueueBinding, ...],
        batch_size: int,
        name: str,
        signer: WakeupSigner | None,
        clock: Clock,
    ) -> None:
        self.name = name
        self._client = client
        self._bindings = {binding.name: binding for binding in bindings}
        self._batch_size = batch_size
        self._signer = signer
        self._clock = clock
        all_fifo = all(binding.is_fifo for binding in bindings)
        self.capabilities = TransportCapabilities(
            durable_delivery=True, message_grouping=all_fifo, native_delay=False, ordered_delivery=all_fifo
        )
        self._resolved: dict[str, str] = {
            binding.name: binding.queue_url for binding in bindings if binding.queue_url is not None
        }
        self._resolve_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def queues(self) -> tuple[QueueDefinition, ...]:
        return tuple(binding.queue for binding in self._bindings.values())

    @property
    def bindings(self) -> tuple[SqsQueueBinding, ...]:
        return tuple(self._bindings.values())

    async def start(self) -> None:
        """Nothing to open: the boto3 client is owned by the caller."""

    async def close(self) -> None:
        """Nothing to close: the boto3 client is owned by the caller."""

    async def publish_wakeups(self, command: PublishWakeups) -> PublishWakeupsResult:
        command = validate_publish_command(command)
        by_url: dict[str, list[_Entry]] = {}
        bodies: dict[int, str] = {}
        for index, attempt in enumerate(command.attempts):
            binding = self._bindings.get(attempt.message.queue)
            if binding is None:
                raise configuration_invalid(
                    f'SQS transport has no queue mapping for "{attempt.message.queue}".',
                    queue=attempt.message.queue,
                )
            bodies[index] = create_sqs_wakeup_body(attempt.message)
            queue_url = await self._queue_url(binding)
            entries = by_url.setdefault(queue_url, [])
            entries.append(
                _Entry(index=index, entry_id=f"entry_{len(entries)}", attempt=attempt, binding=binding)
            )
        outcomes: list[WakeupPublishOutcome | None] = [None] * len(command.attempts)
        chunks = errors = 0
        first_error: RunlaneError | None = None
        for queue_url, entries in by_url.items():
            halted: RunlaneError | None = None
            for start in range(0, len(entries), self._batch_size):
                chunk = entries[start : start + self._batch_size]
                chunks += 1
                if halted is not None:
                    # FIFO: a later chunk must not overtake an earlier failed one in its groups.
                    errors += 1
                    self._fail_chunk(chunk, halted, outcomes)
                    continue
                try:
                    await self._send_chunk(queue_url, chunk, bodies, outcomes)
                except RunlaneError as exc:
                    # Other chunks may already be in SQS: raising would mark them failed too (so
                    # republished) and starve the chunks after this one. Only this chunk failed.
                    errors += 1
                    first_error = first_error or exc
                    self._fail_chunk(chunk, exc, outcomes)
                    halted = exc if chunk[0].binding.is_fifo else None
        if first_error is not None and errors == chunks:
            raise first_error  # every call failed: a whole-call error, as for a single batch
        assert all(outcome is not None for outcome in outcomes)
        return PublishWakeupsResult(outcomes=tuple(o for o in outcomes if o is not None))

    def _entry(self, entry: _Entry, body: str) -> dict[str, Any]:
        request: dict[str, Any] = {"Id": entry.entry_id, "MessageBody": body}
        fifo = entry.binding.fifo
        if fifo is not None:
            request["MessageGroupId"] = message_group_id(entry.attempt.message, fifo.message_group)
            if fifo.deduplication is SqsFifoDeduplication.OUTBOX:
                request["MessageDeduplicationId"] = deduplication_id(entry.attempt.outbox_message_id)
        if self._signer is not None:
            request["MessageAttributes"] = {
                name: {"DataType": "String", "StringValue": value}
                for name, value in self._signer.sign(body).items()
            }
        return request

    async def _send_chunk(
        self,
        queue_url: str,
        chunk: list[_Entry],
        bodies: dict[int, str],
        outcomes: list[WakeupPublishOutcome | None],
    ) -> None:
        request = [self._entry(entry, bodies[entry.index]) for entry in chunk]
        try:
            response = await asyncio.to_thread(
                self._client.send_message_batch, QueueUrl=queue_url, Entries=request
            )
        except Exception as exc:
            raise publish_error(exc, queue_url=queue_url) from exc
        published_at = self._clock.now()
        request_id = describe_request_id(response)
        by_id = {entry.entry_id: entry for entry in chunk}
        seen: set[str] = set()

        def invalid(reason: str) -> RunlaneError:
            return RunlaneError(
                ErrorCode.TRANSPORT_PUBLISH_FAILED,
                f"SQS returned an invalid SendMessageBatch response: {reason}.",
                retryable=True,
                meta=error_meta(SqsOperation.PUBLISH, queue_url=queue_url, requestId=request_id),
            )

        def claim(item: object) -> _Entry:
            entry_id = item.get("Id") if isinstance(item, dict) else None
            if not isinstance(entry_id, str) or entry_id not in by_id:
                raise invalid("unknown entry id")
            if entry_id in seen:
                raise invalid(f"duplicate entry id {entry_id}")
            seen.add(entry_id)
            return by_id[entry_id]

        successful = response.get("Successful", []) if isinstance(response, dict) else None
        failed = response.get("Failed", []) if isinstance(response, dict) else None
        if not isinstance(successful, list) or not isinstance(failed, list):
            raise invalid("Successful and Failed must be lists")
        for item in successful:
            entry = claim(item)
            message_id = item.get("MessageId")
            outcomes[entry.index] = PublishedWakeup(
                published_at=published_at,
                provider_message_id=message_id if isinstance(message_id, str) and message_id else None,
            )
        for item in failed:
            entry = claim(item)
            sender_fault = item.get("SenderFault") is True
            code = item.get("Code")
            meta = {
                "entryId": entry.entry_id,
                "providerCode": code if isinstance(code, str) and code else None,
                "requestId": request_id,
                "queueUrl": queue_url,
                "senderFault": sender_fault,
            }
            outcomes[entry.index] = FailedWakeupPublish(
                error=OutboxFailureRecord(
                    code=ErrorCode.TRANSPORT_PUBLISH_FAILED,
                    message=REJECTED_MESSAGE,
                    occurred_at=published_at,
                    retryable=not sender_fault,
                    meta={key: value for key, value in meta.items() if value is not None},
                )
            )
        if len(seen) != len(chunk):
            missing = sorted(set(by_id) - seen)
            raise invalid(f"missing entry id {missing[0]}")

    def _fail_chunk(
        self, chunk: list[_Entry], error: RunlaneError, outcomes: list[WakeupPublishOutcome | None]
    ) -> None:
        """Every attempt of a chunk whose ``SendMessageBatch`` call failed as a whole."""
        occurred_at = self._clock.now()
        for entry in chunk:
            outcomes[entry.index] = FailedWakeupPublish(
                error=OutboxFailureRecord(
                    code=error.code,
                    message=error.message,
                    occurred_at=occurred_at,
                    retryable=error.retryable,
                    meta={**(error.meta or {}), "entryId": entry.entry_id},
                )
            )

    async def _queue_url(self, binding: SqsQueueBinding) -> str:
        """Resolve a queue name once; concurrent first publishes share one ``GetQueueUrl`` call."""
        cached = self._resolved.get(binding.name)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        # One lock per event loop: an asyncio.Lock is bound to the loop it first waits on, and a
        # Lambda sync handler may run each invocation on a new loop.
        lock = self._resolve_locks.setdefault(loop, asyncio.Lock())
        async with lock:
            cached = self._resolved.get(binding.name)
            if cached is None:
                cached = await self._get_queue_url(binding)
                self._resolved[binding.name] = cached
            return cached

    async def _get_queue_url(self, binding: SqsQueueBinding) -> str:
        assert binding.queue_name is not None
        params: dict[str, str] = {"QueueName": binding.queue_name}
        if binding.queue_owner_aws_account_id is not None:
            params["QueueOwnerAWSAccountId"] = binding.queue_owner_aws_account_id
        try:
            response = await asyncio.to_thread(self._client.get_queue_url, **params)
        except Exception as exc:
            raise get_queue_url_error(exc, queue_name=binding.queue_name) from exc
        url = response.get("QueueUrl") if isinstance(response, dict) else None
        if not is_http_url(url):
            raise RunlaneError(
                ErrorCode.TRANSPORT_UNAVAILABLE,
                f'SQS returned no usable queue URL for "{binding.queue_name}".',
                retryable=True,
                meta=error_meta(
                    SqsOperation.GET_QUEUE_URL,
                    queue_name=binding.queue_name,
                    requestId=describe_request_id(response),
                ),
            )
        assert isinstance(url, str)
        return url


def _require_client(client: object, bindings: Sequence[SqsQueueBinding]) -> None:
    methods = ["send_message_batch"]
    if any(binding.queue_url is None for binding in bindings):
        methods.append("get_queue_url")
    for method in methods:
        if not callable(getattr(client, method, None)):
            raise configuration_invalid(
                f"SQS transport client must have a {method}() method (a boto3 SQS client)."
            )


def _check_bindings(queues: object) -> tuple[SqsQueueBinding, ...]:
    if isinstance(queues, str | bytes) or not isinstance(queues, Sequence) or not queues:
        raise configuration_invalid(
            "SQS transport queues must be a non-empty list of sqs_queue(...) bindings."
        )
    seen: dict[str, SqsQueueBinding] = {}
    for binding in queues:
        if not isinstance(binding, SqsQueueBinding):
            raise configuration_invalid("SQS transport queues must be built with sqs_queue(...).")
        earlier = seen.get(binding.name)
        if earlier is not None:
            if earlier.queue != binding.queue:
                raise configuration_invalid(
                    f'SQS transport queue "{binding.name}" must use the same policy in every binding.',
                    queue=binding.name,
                )
            raise configuration_invalid(
                f'SQS transport queue "{binding.name}" must not repeat.', queue=binding.name
            )
        seen[binding.name] = binding
    return tuple(seen.values())


def sqs_transport(
    *,
    client: Any,
    queues: Sequence[SqsQueueBinding],
    batch_size: int = MAX_BATCH_SIZE,
    name: str = "sqs",
    signer: WakeupSigner | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> SqsTransport:
    """Build the SQS transport; any invalid option is a ``configuration_invalid`` right here.

    ``client`` is a boto3 SQS client (sync; calls run in a worker thread). ``signer`` opts in to signed
    wakeups (see :mod:`runlane.infrastructure.sqs.signing`).
    """
    bindings = _check_bindings(queues)
    _require_client(client, bindings)
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 1 <= batch_size <= MAX_BATCH_SIZE
    ):
        raise configuration_invalid("SQS transport batch_size must be an integer from 1 to 10.")
    if not isinstance(name, str) or not name:
        raise configuration_invalid("SQS transport name must be a non-empty string.")
    if signer is not None and not isinstance(signer, WakeupSigner):
        raise configuration_invalid("SQS transport signer must be a WakeupSigner.")
    if not callable(getattr(clock, "now", None)):
        raise configuration_invalid("SQS transport clock must have a now() method.")
    return SqsTransport(
        client=client, bindings=bindings, batch_size=batch_size, name=name, signer=signer, clock=clock
    )
