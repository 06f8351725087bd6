"""A pooled connection's liveness checked at checkout without a round trip.

SQLAlchemy's ``pool_pre_ping`` sends a query on every checkout: one extra round trip (and one
counted transaction) per storage call, a third of an eager trigger's cost. A restarted or
terminated server does not need a query to be noticed: it closes the socket after sending its
``FATAL`` message, so an idle connection whose socket is readable (or that psycopg already knows
is closed or broken) is dead. Such a connection fails the checkout with ``DisconnectionError``;
the pool discards it and reconnects. A peer that vanished without closing the socket (a cut
network path) is not seen here; ``pool_pre_ping=True`` uses the query-based ping instead, for
those networks.

``pool_pre_ping`` (storage and NOTIFY transport): ``"socket"`` (the default) is this check,
``True`` SQLAlchemy's query ping, ``False`` no check (a dead connection then fails one call with a
retryable error and is replaced).
"""

import select
from typing import Any, Literal

import psycopg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from runlane.domain.errors import configuration_invalid

PrePing = bool | Literal["socket"]
SOCKET: Literal["socket"] = "socket"


def check_pre_ping(value: object) -> PrePing:
    if value is True or value is False or value == SOCKET:
        return value
    raise configuration_invalid(
        'pool_pre_ping must be "socket", True or False.', field="pool_pre_ping", value=repr(value)
    )


def connection_is_dead(driver: Any) -> bool:
    """``True`` when the idle psycopg connection ``driver`` is known or seen to be unusable."""
    if driver.closed or driver.broken:
        return True
    try:
        fd = driver.pgconn.socket
        # poll, not select: select() cannot watch descriptors >= 1024 (FD_SETSIZE), which busy
        # processes reach.
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        ready = poller.poll(0)
    except (OSError, psycopg.OperationalError):  # a closed pgconn has no socket
        return True
    # An idle connection has nothing to read unless the server is ending it.
    return bool(ready)


def install_liveness_check(engine: AsyncEngine) -> None:
    """Check every checkout of ``engine``'s pool with ``connection_is_dead``."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if connection_is_dead(dbapi_connection.driver_connection):
            # This connection only: one backend may end alone (idle_session_timeout, a proxy's idle
            # cut, pg_terminate_backend); after a restart each dead one is caught at its own checkout.
            raise sa_exc.DisconnectionError("the server closed this pooled connection")
