"""The shared transport conformance suite, run against the SQS transport and the moto server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from runlane.domain.queues import queue
from runlane.infrastructure.sqs import SqsTransport, sqs_queue, sqs_transport
from runlane.testing.conformance import TransportConformance
from tests.unit.sqs.fakes import ClientProxy, drain

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsProbe:
    """Sees what the transport sent and what SQS accepted; can make the next entries fail."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url
        self.accepted_ids: list[str] = []  # SQS message ids in publish order
        self.fail_next = 0
        self.fail_retryable = True
        self.proxy = ClientProxy(client, {"send_message_batch": self.send})

    def send(self, call: Any, kwargs: dict[str, Any]) -> Any:
        entries = kwargs["Entries"]
        doomed = {entry["Id"] for entry in entries[: self.fail_next]}
        self.fail_next -= len(doomed)
        kept = [entry for entry in entries if entry["Id"] not in doomed]
        response = (
            call(QueueUrl=kwargs["QueueUrl"], Entries=kept) if kept else {"Successful": [], "Failed": []}
        )
        by_id = {item["Id"]: item["MessageId"] for item in response["Successful"]}
        self.accepted_ids += [by_id[entry["Id"]] for entry in kept if entry["Id"] in by_id]
        response["Failed"] = [
            *response.get("Failed", []),
            *(
                {"Id": entry_id, "SenderFault": not self.fail_retryable, "Code": "InternalError"}
                for entry_id in sorted(doomed)
            ),
        ]
        return response

    def received(self) -> list[dict[str, Any]]:
        """Every wakeup in the queue (the ``message`` object), ordered as it was published."""
        bodies = {m["MessageId"]: m["Body"] for m in drain(self.client, self.queue_url, rounds=50)}
        wire: list[dict[str, Any]] = [
            json.loads(bodies[message_id])["message"]
            for message_id in self.accepted_ids
            if message_id in bodies
        ]
        return wire


class TestSqsTransportConformance(TransportConformance):
    @pytest.fixture
    async def transport(self, sqs_client: SQSClient) -> AsyncIterator[SqsTransport]:
        url = sqs_client.create_queue(QueueName="conformance")["QueueUrl"]
        self.probe = SqsProbe(sqs_client, url)
        adapter = sqs_transport(client=self.probe.proxy, queues=[sqs_queue(queue("default"), queue_url=url)])
        await adapter.start()
        try:
            yield adapter
        finally:
            await adapter.close()

    def inject_failures(self, transport: Any, count: int, *, retryable: bool) -> bool:
        self.probe.fail_next = count
        self.probe.fail_retryable = retryable
        return True

    async def received_wire_messages(self, transport: Any) -> list[dict[str, Any]] | None:
        return self.probe.received()
