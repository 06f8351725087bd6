"""``synchronous_commit`` per connection, only when the user asks for it.

With ``off`` the server acknowledges a commit before its WAL reaches disk: commits stop waiting
for the flush (more throughput), and a server crash (not a client crash) can lose the commits of
the last few hundred milliseconds (at most three times ``wal_writer_delay``). The database stays
consistent: a lost commit is lost whole, as if it had never happened. For runlane that means a
trigger acknowledged to its caller, or a recorded outcome, can vanish, and the run is then
redone or recovered by lease expiry; ``on`` (the server default) never loses an acknowledged one.
"""

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from runlane.domain.errors import configuration_invalid

SYNCHRONOUS_COMMIT_LEVELS = ("on", "off", "local", "remote_write", "remote_apply")
# Session scope (``false``): it outlives the transaction it is set in, once that commits.
SET_SYNCHRONOUS_COMMIT = "SELECT set_config('synchronous_commit', %s, false)"


def check_synchronous_commit(level: object) -> str | None:
    """``None`` (leave the server's setting alone) or one of ``SYNCHRONOUS_COMMIT_LEVELS``."""
    if level is None:
        return None
    if not isinstance(level, str) or level not in SYNCHRONOUS_COMMIT_LEVELS:
        raise configuration_invalid(
            f"synchronous_commit must be None or one of {', '.join(SYNCHRONOUS_COMMIT_LEVELS)}.",
            field="synchronous_commit",
        )
    return level


def apply_synchronous_commit(engine: AsyncEngine, level: str) -> None:
    """Set ``level`` on every new pooled connection (session scope, committed at once)."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(SET_SYNCHRONOUS_COMMIT, (level,))
        finally:
            cursor.close()
        # Committed at once: a session setting made in a transaction that later rolls back is undone.
        dbapi_connection.commit()

    event.listen(engine.sync_engine, "connect", on_connect)
