"""Small helpers shared by the camelCase wire mappings of domain values."""

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar, cast

from runlane.domain.errors import RunlaneError
from runlane.domain.timestamps import from_wire_time, to_wire_time
from runlane.domain.vocabulary import ErrorCode

E = TypeVar("E", bound=StrEnum)


def compact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Drop absent optionals: the wire omits them instead of writing ``null``."""
    return {key: value for key, value in fields.items() if value is not None}


def time_or_none(value: datetime | None) -> str | None:
    return None if value is None else to_wire_time(value)


def parse_time_or_none(value: object, field: str) -> datetime | None:
    return None if value is None else from_wire_time(value, field=field)


def require_mapping(value: object, what: str) -> Mapping[str, Any]:
    if type(value) is dict:
        return value  # parsed JSON: skip the abstract-base-class check
    if not isinstance(value, Mapping):
        raise RunlaneError(ErrorCode.VALIDATION_FAILED, f"{what} must be an object.", meta={"field": what})
    return value


def require(data: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in data or data[key] is None:
        raise RunlaneError(
            ErrorCode.VALIDATION_FAILED, f"{what} is missing field {key!r}.", meta={"field": key}
        )
    return data[key]


def parse_enum(
    enum: type[E], value: object, field: str, *, code: ErrorCode = ErrorCode.VALIDATION_FAILED
) -> E:
    """``enum(value)``, but an unknown value is a ``RunlaneError`` rather than a ``ValueError``."""
    if isinstance(value, str):
        member = enum._value2member_map_.get(value)  # what enum(value) looks up, without its call
        if member is not None:
            return cast(E, member)
    allowed = ", ".join(member.value for member in enum)
    raise RunlaneError(code, f"{field} {value!r} is not one of: {allowed}.", meta={"field": field})
