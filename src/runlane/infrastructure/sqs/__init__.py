"""SQS wakeups on boto3: the transport, the wakeup envelope, Lambda and long-running consumers.

Storage stays the source of truth; SQS only carries ``runlane.wakeup`` messages that tell a consumer
to call ``execute_delivery(message)``. Signing (``WakeupSigner`` / ``WakeupVerifier``) is opt-in.
"""

from runlane.infrastructure.sqs.consumer import SqsDeliveryConsumer, create_sqs_delivery_consumer
from runlane.infrastructure.sqs.delivery import SqsDeliveryFailure
from runlane.infrastructure.sqs.envelope import (
    WAKEUP_TYPE,
    WAKEUP_VERSION,
    create_sqs_wakeup_body,
    parse_sqs_wakeup_body,
)
from runlane.infrastructure.sqs.fifo_tokens import fifo_token
from runlane.infrastructure.sqs.lambda_handler import SqsLambdaHandler, create_sqs_lambda_handler
from runlane.infrastructure.sqs.queue_binding import SqsFifoOptions, SqsQueueBinding, sqs_queue
from runlane.infrastructure.sqs.signing import (
    ALGORITHM_ATTRIBUTE,
    EXPIRES_ATTRIBUTE,
    KEY_ID_ATTRIBUTE,
    SIGNATURE_ATTRIBUTE,
    Ed25519Key,
    HmacSha256Key,
    SignatureRejection,
    WakeupKey,
    WakeupSignatureAlgorithm,
    WakeupSigner,
    WakeupVerifier,
)
from runlane.infrastructure.sqs.transport import SqsTransport, sqs_transport

__all__ = [
    "ALGORITHM_ATTRIBUTE",
    "EXPIRES_ATTRIBUTE",
    "KEY_ID_ATTRIBUTE",
    "SIGNATURE_ATTRIBUTE",
    "WAKEUP_TYPE",
    "WAKEUP_VERSION",
    "Ed25519Key",
    "HmacSha256Key",
    "SignatureRejection",
    "SqsDeliveryConsumer",
    "SqsDeliveryFailure",
    "SqsFifoOptions",
    "SqsLambdaHandler",
    "SqsQueueBinding",
    "SqsTransport",
    "WakeupKey",
    "WakeupSignatureAlgorithm",
    "WakeupSigner",
    "WakeupVerifier",
    "create_sqs_delivery_consumer",
    "create_sqs_lambda_handler",
    "create_sqs_wakeup_body",
    "fifo_token",
    "parse_sqs_wakeup_body",
    "sqs_queue",
    "sqs_transport",
]
