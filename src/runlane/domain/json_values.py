"""JSON-safety checks for payloads and metadata: what storage and the wire can carry exactly."""

import math
from collections.abc import Mapping
from typing import Any

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode

JsonValue = Any  # None | bool | int | float | str | list[JsonValue] | dict[str, JsonValue]
MAX_JSON_DEPTH = 64


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def ensure_json_value(
    value: object, *, field: str = "payload", code: ErrorCode = ErrorCode.VALIDATION_FAILED
) -> JsonValue:
    """Check that ``value`` is plain JSON (finite numbers, string keys, no cycles, bounded depth).

    Returns a normalised copy (tuples become lists) so the caller never shares mutable state.
    """

    def fail(reason: str, path: str) -> RunlaneError:
        return RunlaneError(code, f"{field}{path} {reason}", meta={"field": field, "path": path or "$"})

    def walk(node: object, path: str, depth: int, seen: frozenset[int]) -> JsonValue:
        if depth > MAX_JSON_DEPTH:
            raise fail(f"is nested deeper than {MAX_JSON_DEPTH} levels.", path)
        if node is None or isinstance(node, bool):
            return node
        if isinstance(node, int):
            if node.bit_length() > 64:
                try:
                    str(node)  # Python refuses to write ints over sys.get_int_max_str_digits() digits
                except ValueError:
                    raise fail("is an integer too large to write as JSON.", path) from None
            return int(node)
        if isinstance(node, float):
            if not math.isfinite(node):
                raise fail("must not contain NaN or Infinity.", path)
            return node
        if isinstance(node, str):
            if _has_lone_surrogate(node):
                raise fail("must not contain lone surrogate characters.", path)
            return node
        if id(node) in seen:
            raise fail("must not contain cycles.", path)
        if isinstance(node, Mapping):
            out: dict[str, JsonValue] = {}
            for key, item in node.items():
                if not isinstance(key, str):
                    raise fail(f"has a non-string key {key!r}.", path)
                if _has_lone_surrogate(key):
                    raise fail("must not contain lone surrogate characters in keys.", path)
                out[key] = walk(item, f"{path}.{key}", depth + 1, seen | {id(node)})
            return out
        if isinstance(node, list | tuple):
            return [walk(item, f"{path}[{i}]", depth + 1, seen | {id(node)}) for i, item in enumerate(node)]
        raise fail(f"contains a value of type {type(node).__name__}, which is not JSON.", path)

    return walk(value, "", 0, frozenset())


def ensure_json_object(
    value: object, *, field: str = "meta", code: ErrorCode = ErrorCode.VALIDATION_FAILED
) -> dict[str, JsonValue]:
    if not isinstance(value, Mapping):
        raise RunlaneError(code, f"{field} must be a JSON object.", meta={"field": field})
    result: dict[str, JsonValue] = ensure_json_value(value, field=field, code=code)
    return result


def ensure_string_map(
    value: object, *, field: str = "trace_carrier", code: ErrorCode = ErrorCode.VALIDATION_FAILED
) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise RunlaneError(code, f"{field} must map strings to strings.", meta={"field": field})
    ensure_json_value(value, field=field, code=code)
    return dict(value)
