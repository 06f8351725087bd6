"""Array parameters as Postgres array literals, encoded here instead of by psycopg.

Set-based statements pass one array per column. psycopg's text-format list dumper escapes every
element with a regular-expression substitution per quote, which for a batch of JSON documents
(a quote every few characters) cost more than the statement itself. Encoding the literal with
``str.replace`` and sending it as one text parameter, cast in SQL (``CAST(:ids AS text[])``), is
an order of magnitude cheaper and keeps the SQL text the same for every batch size.
"""

from collections.abc import Iterable
from datetime import datetime

NULL = "NULL"


def _element(value: object) -> str:
    if value is None:
        return NULL
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError("Array timestamps must be timezone-aware.")
        return '"' + value.isoformat() + '"'
    raise TypeError(f"Cannot encode {type(value).__name__} in a Postgres array literal.")


def array_literal(values: Iterable[object]) -> str:
    """``{"a","b\\"c",NULL,3}``: a one-dimensional array literal of text, integers or timestamps."""
    return "{" + ",".join(_element(value) for value in values) + "}"
