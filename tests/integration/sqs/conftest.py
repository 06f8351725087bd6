"""Queues on the moto server (real HTTP on 127.0.0.1, real boto3) for the SQS adapter tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

QueueFactory = Callable[..., str]


@pytest.fixture
def make_queue(sqs_client: SQSClient) -> QueueFactory:
    """Create a queue and return its URL; ``fifo=True`` adds ``.fifo`` and the FIFO attributes."""

    def create(
        name: str, *, fifo: bool = False, content_based: bool = False, visibility: int | None = None
    ) -> str:
        attributes: dict[Any, str] = {}
        if fifo:
            name = f"{name}.fifo"
            attributes["FifoQueue"] = "true"
            if content_based:
                attributes["ContentBasedDeduplication"] = "true"
        if visibility is not None:
            attributes["VisibilityTimeout"] = str(visibility)
        return sqs_client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    return create
