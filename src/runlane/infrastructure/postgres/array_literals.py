"""Array parameters as Postgres array literals, encoded here instead of by psycopg.

Set-based statements pass one array per column. psycopg's text-format list dumper escapes every
element with a regular-expression substitution per quote, which for a batch of JSON documents
(a quote every few characters) cost more than the statement itself. Encoding the literal with
``str.replace`` and sending it as one untyped parameter the server reads as the array type
(``$1::text[]``, see ``array_param``) is an order of magnitude cheaper and keeps the SQL text the
same for every batch size.

Bulk writes encode a whole column at once (``text_array``, ``int_array``, ``timestamp_array``,
``document_array``): one comprehension with the column's usual type inlined, every other value
handed to ``_element``, so a column encodes exactly as ``array_literal`` would encode it.
"""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

NULL = "NULL"
# Never in compact ASCII JSON (control characters are escaped there): joins a column of documents.
_DOCUMENT_SEPARATOR = "\x01"


class ArrayLiteralParameter(TypeDecorator[str]):
    """An ``<item>[]`` parameter whose value is already an array literal (a ``str``).

    It renders as ``$n::<item>[]`` and applies no bind processing, so psycopg sends the text with
    no type and the server parses it as the array once, when the statement is bound. A text
    parameter cast in SQL (``CAST($n::varchar AS text[])``) is a run-time conversion instead: in a
    filter (``id = ANY(...)`` outside an index condition) the server re-parsed the whole literal
    for every row it tested, which made a 1,000-row outbox completion take a second on a table
    whose statistics were still empty.
    """

    impl = ARRAY
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


def array_param(name: str, item: TypeEngine[Any]) -> sa.BindParameter[Any]:
    """``$n::<item>[]``: a bind parameter that takes an ``array_literal`` (or a column encoder's) text."""
    return sa.bindparam(name, type_=ArrayLiteralParameter(item))


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


def text_array(values: Sequence[object]) -> str:
    """``array_literal`` of a column of (mostly) strings."""
    try:
        joined = "".join(values)  # type: ignore[arg-type]  # a TypeError unless every value is a str
    except TypeError:
        pass
    else:
        # Ids, names and statuses: nothing to escape, so the column is one join.
        if values and '"' not in joined and "\\" not in joined:
            return '{"' + '","'.join(values) + '"}'  # type: ignore[arg-type]
    return (
        "{"
        + ",".join(
            [
                '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
                if type(value) is str
                else NULL
                if value is None
                else _element(value)
                for value in values
            ]
        )
        + "}"
    )


def int_array(values: Sequence[object]) -> str:
    """``array_literal`` of a column of (mostly) integers."""
    return (
        "{"
        + ",".join(
            [
                str(value) if type(value) is int else NULL if value is None else _element(value)
                for value in values
            ]
        )
        + "}"
    )


def timestamp_array(values: Sequence[object]) -> str:
    """``array_literal`` of a column of (mostly) UTC datetimes."""
    return (
        "{"
        + ",".join(
            [
                _QUOTED_TIMES.get(value) or _quote_time(value)
                if type(value) is datetime and value.tzinfo is UTC
                else NULL
                if value is None
                else _element(value)
                for value in values
            ]
        )
        + "}"
    )


# A batch shares a handful of instants (``now``, lease expiries): each is formatted once.
_QUOTED_TIMES: dict[datetime, str] = {}
_MEMO_LIMIT = 4096


def _quote_time(value: datetime) -> str:
    if len(_QUOTED_TIMES) >= _MEMO_LIMIT:
        _QUOTED_TIMES.clear()
    text = _QUOTED_TIMES[value] = '"' + value.isoformat() + '"'
    return text


def document_array(texts: Sequence[str]) -> str:
    """``array_literal`` of ``dumps_json`` texts (compact ASCII JSON, so never a control character).

    The column is joined with a control character and quoted in three passes over the whole text
    instead of two ``str.replace`` calls per document.
    """
    if not texts:
        return "{}"
    joined = _DOCUMENT_SEPARATOR.join(texts)
    return '{"' + joined.replace("\\", "\\\\").replace('"', '\\"').replace(_DOCUMENT_SEPARATOR, '","') + '"}'
