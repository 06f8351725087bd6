"""Opaque keyset cursors for storage adapters: urlsafe base64 of a small JSON object.

Cursors are owned by storage (callers treat them as opaque strings); adapters share this codec so
every backend rejects malformed cursors the same way. A cursor records the position after the last
item of a page (sort value and id) plus the scope it belongs to (kind, environment, sort,
direction), so it is never applied to another query and pages stay stable while rows are inserted.
Anything malformed is ``validation_failed``.
"""

import base64
import binascii
import json
from datetime import datetime, timedelta
from typing import Any

from runlane.domain.errors import validation_failed
from runlane.domain.timestamps import EPOCH

_MICROSECOND = timedelta(microseconds=1)


def time_key(value: datetime) -> int:
    """Whole microseconds since the epoch: exact and orderable inside JSON."""
    return (value - EPOCH) // _MICROSECOND


def time_from_key(value: int) -> datetime:
    return EPOCH + value * _MICROSECOND


def encode_cursor(kind: str, **fields: Any) -> str:
    raw = json.dumps({"k": kind, **fields}, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    return base64.urlsafe_b64encode(raw.encode("ascii")).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, kind: str, **expected: Any) -> dict[str, Any]:
    """Decode a cursor of ``kind`` whose ``expected`` fields match the query it continues."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii"))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise validation_failed("cursor is not a valid cursor for this query.", cursor=cursor[:80]) from exc
    if not isinstance(data, dict) or data.get("k") != kind:
        raise validation_failed("cursor is not a valid cursor for this query.", cursor=cursor[:80])
    for name, value in expected.items():
        if data.get(name) != value:
            raise validation_failed(
                "cursor belongs to a query with different sorting or scope.", cursor=cursor[:80], field=name
            )
    return data


def cursor_int(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise validation_failed("cursor is not a valid cursor for this query.", field=name)
    return value


def cursor_str(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise validation_failed("cursor is not a valid cursor for this query.", field=name)
    return value
