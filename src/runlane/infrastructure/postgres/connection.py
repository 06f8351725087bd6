"""Connection strings: normalise to psycopg 3, resolve the schema, strip ``?schema=``.

Schema resolution order (as in the original adapter): the explicit ``schema`` option, then a
Prisma-style ``?schema=`` query parameter, then ``public``. The parameter is removed before the
URL reaches libpq, which would reject it as an unknown connection option.
"""

from dataclasses import dataclass
from typing import Any

from psycopg.conninfo import make_conninfo
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from runlane.domain.errors import configuration_invalid
from runlane.infrastructure.postgres.identifiers import DEFAULT_SCHEMA, validate_schema_name

DRIVER = "postgresql+psycopg"
_ACCEPTED_DRIVERS = frozenset({"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg_async"})
SCHEMA_QUERY_PARAMETER = "schema"
# Only its URL-to-arguments translation is used (the one SQLAlchemy applies to its own connections).
_PSYCOPG = PGDialect_psycopg()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class ResolvedConnection:
    url: URL
    schema: str

    @property
    def connect_kwargs(self) -> dict[str, Any]:
        """The arguments SQLAlchemy's psycopg dialect gives ``psycopg.connect`` for this URL."""
        _, kwargs = _PSYCOPG.create_connect_args(self.url)  # type: ignore[no-untyped-call]
        return dict(kwargs)

    @property
    def libpq_conninfo(self) -> str:
        """The same target as a libpq ``key=value`` string (for psycopg without SQLAlchemy).

        Quoted by psycopg from ``connect_kwargs``: a URL rendered back to text keeps a space in a
        role or password unescaped, which libpq rejects.
        """
        return make_conninfo("", **self.connect_kwargs)


def resolve_connection(connection_string: str | URL, schema: str | None = None) -> ResolvedConnection:
    """Parse and normalise ``connection_string``; ``configuration_invalid`` when it is not Postgres."""
    if isinstance(connection_string, URL):
        url = connection_string
    else:
        if not isinstance(connection_string, str) or not connection_string.strip():
            raise configuration_invalid("Postgres connection_string must be a non-empty URL string.")
        try:
            url = make_url(connection_string.strip())
        except ArgumentError as exc:
            raise configuration_invalid(
                "Postgres connection_string must be a URL like postgresql://user@host:5432/database."
            ) from exc
    if url.drivername not in _ACCEPTED_DRIVERS:
        raise configuration_invalid(
            f"Postgres connection_string uses {url.drivername!r}; use postgresql:// or postgresql+psycopg://.",
            driver=url.drivername,
        )
    query_schema = url.query.get(SCHEMA_QUERY_PARAMETER)
    if isinstance(query_schema, tuple):
        if len(set(query_schema)) != 1:
            raise configuration_invalid("Postgres connection_string has conflicting schema parameters.")
        query_schema = query_schema[0]
    chosen = schema if schema is not None else query_schema if query_schema is not None else DEFAULT_SCHEMA
    url = url.difference_update_query([SCHEMA_QUERY_PARAMETER]).set(drivername=DRIVER)
    return ResolvedConnection(url=url, schema=validate_schema_name(chosen))
