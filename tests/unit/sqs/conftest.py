"""An in-process fake AWS (moto ``mock_aws``): no network, fresh queues per test."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from tests.unit.sqs.fakes import REGION


@pytest.fixture
def sqs() -> Iterator[Any]:
    """A real boto3 SQS client whose requests moto answers in process."""
    with mock_aws():
        yield boto3.client(
            "sqs",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
