"""Classify boto3/botocore failures into runlane error codes, keeping provider detail in ``meta``.

Throttling, transient and server errors and network failures are worth retrying; everything else
(access denied, invalid parameters, a missing queue) is not, until someone changes configuration.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import botocore.exceptions

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode

# botocore's standard retry mode lists, plus the SQS- and KMS-specific throttles.
_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "KmsThrottled",
        "KMS.ThrottlingException",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "AWS.SimpleQueueService.ServiceUnavailable",
    }
)
_QUEUE_MISSING_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    ConnectionError,
    TimeoutError,
)


class SqsOperation(StrEnum):
    PUBLISH = "publish"
    GET_QUEUE_URL = "get_queue_url"
    RECEIVE = "receive"
    DELETE = "delete"
    CHANGE_VISIBILITY = "change_visibility"
    GET_QUEUE_ATTRIBUTES = "get_queue_attributes"


@dataclass(frozen=True, slots=True)
class ProviderFailure:
    """What an SDK exception says about itself."""

    provider_code: str | None
    http_status_code: int | None
    request_id: str | None
    transient: bool
    queue_missing: bool


def describe(exc: BaseException) -> ProviderFailure:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        network = isinstance(exc, _NETWORK_ERRORS)
        return ProviderFailure(None, None, None, transient=network, queue_missing=False)
    raw_error = response.get("Error")
    raw_metadata = response.get("ResponseMetadata")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    codes = {
        code for code in (error.get("Code"), error.get("QueryErrorCode")) if isinstance(code, str) and code
    }
    status = metadata.get("HTTPStatusCode")
    status = status if isinstance(status, int) and not isinstance(status, bool) else None
    request_id = metadata.get("RequestId")
    code = error.get("Code")
    transient = bool(codes & (_THROTTLING_CODES | _TRANSIENT_CODES)) or (
        status is not None and (status == 429 or status >= 500)
    )
    return ProviderFailure(
        provider_code=code if isinstance(code, str) and code else None,
        http_status_code=status,
        request_id=request_id if isinstance(request_id, str) and request_id else None,
        transient=transient,
        queue_missing=bool(codes & _QUEUE_MISSING_CODES),
    )


def error_meta(
    operation: SqsOperation,
    failure: ProviderFailure | None = None,
    *,
    queue_name: str | None = None,
    queue_url: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"operation": operation.value}
    if failure is not None:
        meta.update(
            providerCode=failure.provider_code,
            httpStatusCode=failure.http_status_code,
            requestId=failure.request_id,
        )
    meta.update(queueName=queue_name, queueUrl=queue_url, **extra)
    return {key: value for key, value in meta.items() if value is not None}


def publish_error(exc: BaseException, *, queue_url: str) -> RunlaneError:
    """A failed ``SendMessageBatch`` call: transient ones are retryable, the rest are not."""
    failure = describe(exc)
    meta = error_meta(SqsOperation.PUBLISH, failure, queue_url=queue_url)
    if failure.transient:
        return RunlaneError(
            ErrorCode.TRANSPORT_UNAVAILABLE,
            "SQS is unavailable for wakeup publish.",
            retryable=True,
            meta=meta,
            cause=exc,
        )
    return RunlaneError(
        ErrorCode.TRANSPORT_PUBLISH_FAILED,
        "SQS wakeup publish failed.",
        retryable=False,
        meta=meta,
        cause=exc,
    )


def get_queue_url_error(exc: BaseException, *, queue_name: str) -> RunlaneError:
    """A failed ``GetQueueUrl``: a missing queue is configuration; anything else is availability."""
    failure = describe(exc)
    meta = error_meta(SqsOperation.GET_QUEUE_URL, failure, queue_name=queue_name)
    if failure.queue_missing:
        return RunlaneError(
            ErrorCode.CONFIGURATION_INVALID,
            f'SQS queue "{queue_name}" does not exist.',
            retryable=False,
            meta=meta,
            cause=exc,
        )
    return RunlaneError(
        ErrorCode.TRANSPORT_UNAVAILABLE,
        f'SQS queue URL for "{queue_name}" could not be resolved.',
        retryable=failure.transient,
        meta=meta,
        cause=exc,
    )


def call_error(operation: SqsOperation, exc: BaseException, *, queue_url: str) -> RunlaneError:
    """Receive/delete/visibility failures in consumers: always ``transport_unavailable``."""
    failure = describe(exc)
    return RunlaneError(
        ErrorCode.TRANSPORT_UNAVAILABLE,
        f"SQS {operation.value.replace('_', ' ')} failed.",
        retryable=failure.transient,
        meta=error_meta(operation, failure, queue_url=queue_url),
        cause=exc,
    )


def describe_request_id(response: object) -> str | None:
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    request_id = metadata.get("RequestId") if isinstance(metadata, dict) else None
    return request_id if isinstance(request_id, str) and request_id else None
