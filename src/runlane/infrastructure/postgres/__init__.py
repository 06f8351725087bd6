"""Postgres storage: durable runs, events, ownership, capacity and outbox on SQLAlchemy Core + psycopg 3.

``postgres_storage(connection_string=..., schema=None)`` builds the adapter; the schema must be
migrated first (``get_postgres_storage_migration_sql`` / ``apply_postgres_storage_migrations``).
``postgres_notify_transport(...)`` is the matching LISTEN/NOTIFY wakeup transport.
See docs/postgres.md.
"""

from runlane.infrastructure.postgres.migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    apply_postgres_storage_migrations,
    get_postgres_storage_grant_sql,
    get_postgres_storage_migration_sql,
)
from runlane.infrastructure.postgres.notify_listener import PostgresWakeupSubscription
from runlane.infrastructure.postgres.notify_transport import (
    POSTGRES_NOTIFY_CAPABILITIES,
    PostgresNotifyTransport,
    postgres_notify_transport,
)
from runlane.infrastructure.postgres.storage import (
    POSTGRES_STORAGE_CAPABILITIES,
    PostgresStorage,
    postgres_storage,
)

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "POSTGRES_NOTIFY_CAPABILITIES",
    "POSTGRES_STORAGE_CAPABILITIES",
    "PostgresNotifyTransport",
    "PostgresStorage",
    "PostgresWakeupSubscription",
    "apply_postgres_storage_migrations",
    "get_postgres_storage_grant_sql",
    "get_postgres_storage_migration_sql",
    "postgres_notify_transport",
    "postgres_storage",
]
