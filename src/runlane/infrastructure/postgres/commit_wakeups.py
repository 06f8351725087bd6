"""Wakeups sent by the storage's own commit, for the Postgres lane (storage and NOTIFY share a database).

Through a separate transport, an eager trigger costs three transactions: the append commits its
due outbox rows claimed, the transport sends ``NOTIFY`` in a second one, and the completion marks
the rows published in a third. When ``create_postgres_lane`` composes the storage with the NOTIFY
transport on the same database and schema, the append does it all at once: it writes those rows
``published`` and calls ``pg_notify`` for them in the same statement (or, on the transactional
paths, the same transaction). Postgres delivers a notification when, and only if, its transaction
commits, so a listener never wakes before the run is visible, and a write that loses its
compare-and-set or rolls back wakes nobody. The rows end exactly as a claim plus a successful
publish would leave them, minus the claim.

A row whose wakeup does not fit a NOTIFY payload (``wakeup_channels.encode_wakeup`` gives
``None``) is written claimed instead, and the transport fails it, as without this.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from runlane.infrastructure.postgres.array_literals import array_literal, array_param
from runlane.infrastructure.postgres.wakeup_channels import all_queues_channel, encode_wakeup, queue_channel
from runlane.ports.storage_commands import OutboxMessage

_CHANNELS = "n_channels"
_PAYLOADS = "n_payloads"
_OUTBOX_IDS = "n_outbox_ids"

# Standalone: every (channel, payload) pair of a call in one statement (the transport's publish,
# and the transactional append paths). Both parameters are array literals, typed when bound.
_NOTICES = (
    sa.func.unnest(array_param(_CHANNELS, sa.Text()), array_param(_PAYLOADS, sa.Text()))
    .table_valued(sa.column("channel", sa.Text()), sa.column("payload", sa.Text()))
    .render_derived(name="n")
)
PUBLISH = sa.select(sa.func.pg_notify(_NOTICES.c.channel, _NOTICES.c.payload)).select_from(_NOTICES)


def fits_notify(row: OutboxMessage) -> bool:
    """Whether ``row``'s wakeup fits a NOTIFY payload, so the append's commit can send it."""
    return encode_wakeup(row.message) is not None


def _pairs(schema: str, rows: Sequence[OutboxMessage]) -> tuple[list[str], list[str], list[str]]:
    """(outbox ids, channels, payloads): each wakeup on its queue's channel and the schema's."""
    everything = all_queues_channel(schema)
    ids: list[str] = []
    channels: list[str] = []
    payloads: list[str] = []
    for row in rows:
        payload = encode_wakeup(row.message)
        if payload is None:  # such a row was written claimed, not published (``fits_notify``)
            continue
        ids += (row.id, row.id)
        channels += (queue_channel(schema, row.queue), everything)
        payloads += (payload, payload)
    return ids, channels, payloads


def publish_params(channels: Sequence[str], payloads: Sequence[str]) -> dict[str, str]:
    """``PUBLISH``'s parameters."""
    return {_CHANNELS: array_literal(channels), _PAYLOADS: array_literal(payloads)}


def rows_publish_params(schema: str, rows: Sequence[OutboxMessage]) -> dict[str, str]:
    """``PUBLISH``'s parameters for the wakeups of ``rows`` (written ``published`` in this transaction)."""
    _, channels, payloads = _pairs(schema, rows)
    return publish_params(channels, payloads)


def notify_written(outbox: sa.CTE) -> sa.CTE:
    """A CTE calling ``pg_notify`` for every row ``outbox`` (an insert ``RETURNING id``) wrote.

    Joined to what was written, so a row lost with its run's compare-and-set sends nothing.
    """
    notices = (
        sa.func.unnest(
            array_param(_OUTBOX_IDS, sa.Text()),
            array_param(_CHANNELS, sa.Text()),
            array_param(_PAYLOADS, sa.Text()),
        )
        .table_valued(*(sa.column(name, sa.Text()) for name in ("outbox_id", "channel", "payload")))
        .render_derived(name="w_notices")
    )
    return (
        sa.select(sa.func.pg_notify(notices.c.channel, notices.c.payload).label("sent"))
        .select_from(notices.join(outbox, outbox.c.id == notices.c.outbox_id))
        .cte("w_notify")
    )


def evaluated(notify: sa.CTE) -> sa.ColumnElement[bool]:
    """A filter that is always true and makes the statement run ``notify``.

    Postgres runs data-modifying CTEs whether or not they are read, but a plain ``SELECT`` CTE only
    when it is read: this reads it once (an uncorrelated subquery, evaluated once per statement).
    """
    return sa.select(sa.func.count()).select_from(notify).scalar_subquery() >= 0


def notify_params(schema: str, rows: Sequence[OutboxMessage]) -> dict[str, Any]:
    """``notify_written``'s parameters for the published ``rows`` of a set-based write."""
    ids, channels, payloads = _pairs(schema, rows)
    return {_OUTBOX_IDS: array_literal(ids), **publish_params(channels, payloads)}
