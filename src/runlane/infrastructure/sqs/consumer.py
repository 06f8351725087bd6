"""``create_sqs_delivery_consumer()``: a long-running SQS poller for containers and VMs.

Long-polls one queue, hands each wakeup to core, and deletes only the messages whose delivery
returned. Failed messages stay in SQS and come back after the visibility timeout (and end in the
queue's DLQ after ``maxReceiveCount``). While deliveries run longer than half the visibility timeout
it extends the visibility of their messages, so a slow task does not wake a second consumer.
"""

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from runlane.domain.errors import RunlaneError, configuration_invalid
from runlane.domain.values import DeliveryMessage
from runlane.domain.vocabulary import ErrorCode, SqsDeliveryFailurePhase
from runlane.infrastructure.sqs.abortable_call import in_daemon_thread
from runlane.infrastructure.sqs.delivery import (
    ExecuteDelivery,
    OnDeliveryFailure,
    SqsDeliveryFailure,
    WakeupDelivery,
    check_callable,
    check_flag,
    string_attributes,
)
from runlane.infrastructure.sqs.provider_errors import (
    SqsOperation,
    call_error,
    describe_request_id,
    error_meta,
)
from runlane.infrastructure.sqs.queue_binding import FIFO_SUFFIX, is_http_url, provider_queue_name
from runlane.infrastructure.sqs.signing import WakeupVerifier
from runlane.infrastructure.sqs.visibility import ReceivedMessage, keep_invisible, release
from runlane.ports.delivery_options import check_delivery_options

logger = logging.getLogger("runlane.sqs")
MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200


def _int_in_range(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise configuration_invalid(f"SQS consumer {name} must be an integer from {low} to {high}.")
    return value


class SqsDeliveryConsumer:
    """Handle of a running consumer: ``start()``, ``stop()`` and the ``closed`` awaitable."""

    def __init__(
        self,
        *,
        client: Any,
        queue_url: str,
        delivery: WakeupDelivery,
        fifo: bool,
        max_number_of_messages: int,
        wait_time_seconds: int,
        visibility_timeout_seconds: int | None,
        concurrency: int,
        receive_attributes: bool,
        extend_visibility: bool,
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._delivery = delivery
        self._fifo = fifo
        self._max_messages = max_number_of_messages
        self._wait_time = wait_time_seconds
        self._visibility = visibility_timeout_seconds
        # FIFO order inside a batch only holds if messages run one after another.
        self._concurrency = 1 if fifo else concurrency
        self._receive_attributes = receive_attributes
        self._extend_visibility = extend_visibility
        self._closed: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._receiving: asyncio.Future[Any] | None = None
        self._stopping = False

    @property
    def queue_url(self) -> str:
        return self._queue_url

    @property
    def closed(self) -> asyncio.Future[None]:
        """One future (the same object on every read) that settles when the loop has ended.

        It fails if the loop failed (a receive error); the failure counts as retrieved, so an
        unobserved one is not logged as "never retrieved".
        """
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
            self._closed.add_done_callback(lambda done: done.cancelled() or done.exception())
        return self._closed

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Begin polling; calling it again (or after ``stop()``) does nothing."""
        closed = self.closed
        if self._task is not None or self._stopping or closed.done():
            return
        self._task = asyncio.get_running_loop().create_task(self._run(closed), name="runlane-sqs-consumer")

    async def stop(self) -> None:
        """Stop receiving, let deliveries in progress finish (and be deleted), then await ``closed``."""
        self._stopping = True
        closed = self.closed
        if self._task is None and not closed.done():
            closed.set_result(None)
        if self._receiving is not None and not self._receiving.done():
            self._receiving.cancel()
        await asyncio.shield(closed)

    async def _run(self, closed: asyncio.Future[None]) -> None:
        try:
            visibility = await self._known_visibility()
            while not self._stopping:
                messages = await self._receive()
                if messages:
                    await self._process_batch(messages, visibility)
        except asyncio.CancelledError:
            closed.cancel()
            raise
        except Exception as exc:
            if not closed.done():
                closed.set_exception(exc)
        else:
            if not closed.done():
                closed.set_result(None)

    async def _known_visibility(self) -> int | None:
        """The visibility timeout to keep extending: configured, else the queue's own attribute."""
        if not self._extend_visibility:
            return None
        if self._visibility is not None:
            return self._visibility or None
        get_attributes = getattr(self._client, "get_queue_attributes", None)
        if not callable(get_attributes):
            return None
        try:
            response = await asyncio.to_thread(
                get_attributes, QueueUrl=self._queue_url, AttributeNames=["VisibilityTimeout"]
            )
            value = int(response["Attributes"]["VisibilityTimeout"])
        except Exception as exc:
            logger.warning(
                "SQS consumer could not read the VisibilityTimeout of %s, so it will not extend "
                "visibility (pass visibility_timeout_seconds to avoid the lookup): %s",
                self._queue_url,
                exc,
            )
            return None
        return value if value > 0 else None

    async def _receive(self) -> list[Any]:
        params: dict[str, Any] = {
            "QueueUrl": self._queue_url,
            "MaxNumberOfMessages": self._max_messages,
            "WaitTimeSeconds": self._wait_time,
        }
        if self._visibility is not None:
            params["VisibilityTimeout"] = self._visibility
        if self._receive_attributes:
            params["MessageAttributeNames"] = ["All"]
        self._receiving = in_daemon_thread(lambda: self._client.receive_message(**params))
        try:
            response = await self._receiving
        except (asyncio.CancelledError, Exception) as exc:
            task = asyncio.current_task()
            if isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling():
                raise  # the consumer task itself is being cancelled, not just the receive
            if self._stopping:
                return []  # an interrupted or failed receive while stopping is an empty receive
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise call_error(SqsOperation.RECEIVE, exc, queue_url=self._queue_url) from exc
        finally:
            self._receiving = None
        messages = response.get("Messages", []) if isinstance(response, dict) else None
        if not isinstance(messages, list):
            raise RunlaneError(
                ErrorCode.TRANSPORT_UNAVAILABLE,
                "SQS returned an invalid ReceiveMessage response.",
                meta=error_meta(SqsOperation.RECEIVE, queue_url=self._queue_url),
            )
        return messages

    async def _process_batch(self, messages: list[Any], visibility: int | None) -> None:
        batch = [self._track(index, raw) for index, raw in enumerate(messages)]
        extender = (
            asyncio.get_running_loop().create_task(
                keep_invisible(self._client, self._queue_url, batch, visibility)
            )
            if visibility is not None
            else None
        )
        try:
            if self._concurrency == 1:
                for item in batch:
                    if self._stopping:
                        break
                    if not await self._handle(item) and self._fifo:
                        break  # FIFO: the rest of the batch must not overtake the failed message
            else:
                slots = asyncio.Semaphore(self._concurrency)

                async def bounded(item: ReceivedMessage) -> None:
                    async with slots:
                        if not self._stopping:
                            await self._handle(item)

                await asyncio.gather(*(bounded(item) for item in batch))
            await self._delete([item for item in batch if item.delivered is not None])
        finally:
            if extender is not None:
                extender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await extender
        if self._stopping:
            await release(self._client, self._queue_url, [item for item in batch if not item.started])

    @staticmethod
    def _track(index: int, raw: object) -> ReceivedMessage:
        message: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        handle, message_id = message.get("ReceiptHandle"), message.get("MessageId")
        return ReceivedMessage(
            index=index,
            raw=message,
            receipt_handle=handle if isinstance(handle, str) and handle else None,
            message_id=message_id if isinstance(message_id, str) and message_id else None,
        )

    async def _handle(self, item: ReceivedMessage) -> bool:
        item.started = True
        body = item.raw.get("Body")
        if item.message_id is None or item.receipt_handle is None or not isinstance(body, str):
            cause = RunlaneError(
                ErrorCode.ADAPTER_CONTRACT_VIOLATION,
                "SQS message must have a string Body and a non-empty MessageId and ReceiptHandle.",
            )
            outcome: DeliveryMessage | SqsDeliveryFailure = SqsDeliveryFailure(
                cause=cause,
                phase=SqsDeliveryFailurePhase.MESSAGE,
                provider_message_id=item.message_id,
                queue_url=self._queue_url,
            )
        else:
            outcome = await self._delivery.deliver(
                body=body,
                attributes=string_attributes(item.raw.get("MessageAttributes"), "StringValue"),
                provider_message_id=item.message_id,
                queue_url=self._queue_url,
            )
        if isinstance(outcome, SqsDeliveryFailure):
            item.settled = True  # let SQS redeliver it once the current visibility runs out
            await self._delivery.report(outcome)
            return False
        item.delivered = outcome
        return True

    async def _delete(self, delivered: list[ReceivedMessage]) -> None:
        if not delivered:
            return
        entries = {f"delete_{item.index}": item for item in delivered}
        request = [
            {"Id": entry_id, "ReceiptHandle": item.receipt_handle} for entry_id, item in entries.items()
        ]
        try:
            response = await asyncio.to_thread(
                self._client.delete_message_batch, QueueUrl=self._queue_url, Entries=request
            )
        except Exception as exc:
            error = call_error(SqsOperation.DELETE, exc, queue_url=self._queue_url)
            for item in delivered:
                await self._report_delete(item, error)
            return
        finally:
            for item in delivered:
                item.settled = True
        request_id = describe_request_id(response)
        failed = response.get("Failed", []) if isinstance(response, dict) else []
        successful = response.get("Successful", []) if isinstance(response, dict) else []
        done = {entry.get("Id") for entry in successful if isinstance(entry, Mapping)}
        for entry in failed if isinstance(failed, list) else []:
            entry_id = entry.get("Id") if isinstance(entry, Mapping) else None
            if not isinstance(entry_id, str) or entry_id not in entries or entry_id in done:
                continue
            item = entries[entry_id]
            done.add(entry_id)
            sender_fault = entry.get("SenderFault") is True
            code = entry.get("Code")
            meta = error_meta(
                SqsOperation.DELETE,
                queue_url=self._queue_url,
                entryId=entry_id,
                providerCode=code if isinstance(code, str) and code else None,
                requestId=request_id,
                senderFault=sender_fault,
            )
            error = RunlaneError(
                ErrorCode.TRANSPORT_UNAVAILABLE,
                "SQS could not delete a delivered wakeup.",
                retryable=not sender_fault,
                meta=meta,
            )
            await self._report_delete(item, error)
        for entry_id, item in entries.items():
            if entry_id not in done:
                error = RunlaneError(
                    ErrorCode.TRANSPORT_UNAVAILABLE,
                    "SQS did not confirm deleting a delivered wakeup.",
                    retryable=True,
                    meta=error_meta(SqsOperation.DELETE, queue_url=self._queue_url, entryId=entry_id),
                )
                await self._report_delete(item, error)

    async def _report_delete(self, item: ReceivedMessage, error: RunlaneError) -> None:
        await self._delivery.report(
            SqsDeliveryFailure(
                cause=error,
                phase=SqsDeliveryFailurePhase.DELETE,
                provider_message_id=item.message_id,
                delivery_message=item.delivered,
                queue_url=self._queue_url,
            )
        )


def create_sqs_delivery_consumer(
    *,
    client: Any,
    queue_url: str,
    execute_delivery: ExecuteDelivery,
    delivery_options: Mapping[str, Any] | None = None,
    fifo: bool = False,
    max_number_of_messages: int = 10,
    wait_time_seconds: int = 20,
    visibility_timeout_seconds: int | None = None,
    on_delivery_failure: OnDeliveryFailure | None = None,
    concurrency: int = 1,
    verifier: WakeupVerifier | None = None,
    extend_visibility: bool = True,
) -> SqsDeliveryConsumer:
    """Build a consumer for one queue (``configuration_invalid`` on bad options); call ``start()``.

    ``concurrency`` (1..10) runs up to that many messages of one received batch at once; FIFO queues
    always run one at a time and stop a batch at its first failure. ``visibility_timeout_seconds`` is
    sent with every receive if given; with ``extend_visibility`` the consumer keeps messages hidden
    while they run, using that value or, if absent, the queue's ``VisibilityTimeout`` attribute.
    """
    if not is_http_url(queue_url):
        raise configuration_invalid("SQS consumer queue_url must be an http:// or https:// URL.")
    for method in ("receive_message", "delete_message_batch"):
        if not callable(getattr(client, method, None)):
            raise configuration_invalid(
                f"SQS consumer client must have a {method}() method (a boto3 SQS client)."
            )
    check_callable(execute_delivery, "execute_delivery")
    check_callable(on_delivery_failure, "on_delivery_failure", optional=True)
    options = check_delivery_options(delivery_options)
    fifo = check_flag(fifo, "fifo")
    if fifo != provider_queue_name(queue_url).endswith(FIFO_SUFFIX):
        raise configuration_invalid(
            "SQS consumer fifo must be True exactly when the queue URL ends in .fifo."
        )
    max_messages = _int_in_range(max_number_of_messages, "max_number_of_messages", 1, 10)
    wait_time = _int_in_range(wait_time_seconds, "wait_time_seconds", 0, 20)
    visibility = (
        None
        if visibility_timeout_seconds is None
        else _int_in_range(
            visibility_timeout_seconds, "visibility_timeout_seconds", 0, MAX_VISIBILITY_TIMEOUT_SECONDS
        )
    )
    slots = _int_in_range(concurrency, "concurrency", 1, 10)
    extend = check_flag(extend_visibility, "extend_visibility")
    if extend and not callable(getattr(client, "change_message_visibility", None)):
        raise configuration_invalid(
            "SQS consumer client needs change_message_visibility() to extend visibility."
        )
    if verifier is not None and not isinstance(verifier, WakeupVerifier):
        raise configuration_invalid("SQS consumer verifier must be a WakeupVerifier.")
    delivery = WakeupDelivery(
        execute_delivery=execute_delivery,
        delivery_options=options,
        verifier=verifier,
        on_delivery_failure=on_delivery_failure,
    )
    return SqsDeliveryConsumer(
        client=client,
        queue_url=queue_url,
        delivery=delivery,
        fifo=fifo,
        max_number_of_messages=max_messages,
        wait_time_seconds=wait_time,
        visibility_timeout_seconds=visibility,
        concurrency=slots,
        receive_attributes=verifier is not None,
        extend_visibility=extend,
    )
