"""``sqs_queue()``: bind one runlane queue definition to one SQS queue (URL or name) and FIFO policy.

The runlane queue definition owns routing and capacity; the binding owns only provider facts.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from runlane.domain.errors import configuration_invalid
from runlane.domain.queues import QueueDefinition
from runlane.domain.vocabulary import SqsFifoDeduplication, SqsFifoMessageGroup, SqsQueueSourceType

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.fifo)?$")
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
MAX_QUEUE_NAME_LENGTH = 80
FIFO_SUFFIX = ".fifo"


@dataclass(frozen=True, slots=True, kw_only=True)
class SqsFifoOptions:
    """FIFO policy: how wakeups are grouped and deduplicated (defaults: per run, per outbox row)."""

    message_group: SqsFifoMessageGroup = SqsFifoMessageGroup.RUN
    deduplication: SqsFifoDeduplication = SqsFifoDeduplication.OUTBOX

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "message_group", SqsFifoMessageGroup(self.message_group))
        except ValueError as exc:
            raise configuration_invalid(
                f"SQS FIFO message_group must be 'run' or 'queue', got {self.message_group!r}."
            ) from exc
        try:
            object.__setattr__(self, "deduplication", SqsFifoDeduplication(self.deduplication))
        except ValueError as exc:
            raise configuration_invalid(
                f"SQS FIFO deduplication must be 'outbox' or 'content_based', got {self.deduplication!r}."
            ) from exc


def is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(c.isspace() for c in value)


def provider_queue_name(queue_url: str) -> str:
    """The queue name is the last path segment of an SQS queue URL."""
    return urlsplit(queue_url).path.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True, kw_only=True)
class SqsQueueBinding:
    """One logical queue mapped to one SQS queue; build it with :func:`sqs_queue`."""

    queue: QueueDefinition
    source_type: SqsQueueSourceType
    queue_url: str | None = None
    queue_name: str | None = None
    queue_owner_aws_account_id: str | None = None
    fifo: SqsFifoOptions | None = None

    @property
    def name(self) -> str:
        """The runlane (logical) queue name."""
        return self.queue.name

    @property
    def is_fifo(self) -> bool:
        return self.fifo is not None


def sqs_queue(
    queue_definition: QueueDefinition,
    *,
    queue_url: str | None = None,
    queue_name: str | None = None,
    queue_owner_aws_account_id: str | None = None,
    fifo: SqsFifoOptions | None = None,
) -> SqsQueueBinding:
    """Bind ``queue_definition`` to exactly one of ``queue_url`` or ``queue_name``.

    A ``queue_name`` is resolved with ``GetQueueUrl`` on first publish and cached. FIFO options and a
    ``.fifo`` provider queue go together: one without the other is a ``configuration_invalid``.
    """
    if not isinstance(queue_definition, QueueDefinition):
        raise configuration_invalid("sqs_queue() needs a queue definition (runlane queue(...)).")
    label = queue_definition.name
    if (queue_url is None) == (queue_name is None):
        raise configuration_invalid(
            f'SQS queue "{label}" needs exactly one of queue_url or queue_name.', queue=label
        )
    if fifo is not None and not isinstance(fifo, SqsFifoOptions):
        raise configuration_invalid(f'SQS queue "{label}" fifo must be SqsFifoOptions.', queue=label)
    if queue_url is not None:
        if not is_http_url(queue_url):
            raise configuration_invalid(
                f'SQS queue "{label}" queue_url must be an http:// or https:// URL.', queue=label
            )
        if queue_owner_aws_account_id is not None:
            raise configuration_invalid(
                f'SQS queue "{label}" queue_owner_aws_account_id is only allowed with queue_name.',
                queue=label,
            )
        provider_name = provider_queue_name(queue_url)
        source = SqsQueueSourceType.QUEUE_URL
    else:
        if (
            not isinstance(queue_name, str)
            or not 1 <= len(queue_name) <= MAX_QUEUE_NAME_LENGTH
            or _QUEUE_NAME.match(queue_name) is None
        ):
            raise configuration_invalid(
                f'SQS queue "{label}" queue_name must be 1..80 characters of [A-Za-z0-9_-], '
                "optionally ending in .fifo.",
                queue=label,
            )
        if queue_owner_aws_account_id is not None and (
            not isinstance(queue_owner_aws_account_id, str)
            or _ACCOUNT_ID.match(queue_owner_aws_account_id) is None
        ):
            raise configuration_invalid(
                f'SQS queue "{label}" queue_owner_aws_account_id must be exactly 12 digits.', queue=label
            )
        provider_name = queue_name
        source = SqsQueueSourceType.QUEUE_NAME
    provider_is_fifo = provider_name.endswith(FIFO_SUFFIX)
    if fifo is not None and not provider_is_fifo:
        raise configuration_invalid(
            f'SQS queue "{label}" has fifo options but its SQS queue name does not end in .fifo.', queue=label
        )
    if fifo is None and provider_is_fifo:
        raise configuration_invalid(
            f'SQS queue "{label}" is a .fifo SQS queue and needs fifo=SqsFifoOptions(...).', queue=label
        )
    return SqsQueueBinding(
        queue=queue_definition,
        source_type=source,
        queue_url=queue_url,
        queue_name=queue_name,
        queue_owner_aws_account_id=queue_owner_aws_account_id,
        fifo=fifo,
    )
