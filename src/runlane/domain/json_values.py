"""JSON-safety checks for payloads and metadata: what storage and the wire can carry exactly."""

import math
from collections.abc import Mapping
from typing import Any

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode

JsonValue = Any  # None | bool | int | float | str | list[JsonValue] | dict[str, JsonValue]
MAX_JSON_DEPTH = 64


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# Where a node sits: ``None`` for the root, else (parent, key) with a str key of an object or the
# int index of an array item; spelled out (``.a[1]``) only when a check fails.
_Path = tuple[Any, str | int] | None


def _path_text(path: _Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(parts))


def ensure_json_value(
    value: object, *, field: str = "payload", code: ErrorCode = ErrorCode.VALIDATION_FAILED
) -> JsonValue:
    """Check that ``value`` is plain JSON (finite numbers, string keys, no cycles, bounded depth).

    Returns a normalised copy (tuples become lists) so the caller never shares mutable state.
    """
    return _Walk(field, code).walk(value, None, 0, frozenset())


class _Walk:
    """One check of one value; exact ``dict``/``list``/``str``/``int`` nodes take the short way."""

    __slots__ = ("code", "field")

    def __init__(self, field: str, code: ErrorCode) -> None:
        self.field = field
        self.code = code

    def fail(self, reason: str, path: _Path) -> RunlaneError:
        text = _path_text(path)
        return RunlaneError(
            self.code, f"{self.field}{text} {reason}", meta={"field": self.field, "path": text or "$"}
        )

    def walk(self, node: object, path: _Path, depth: int, seen: frozenset[int]) -> JsonValue:
        if depth > MAX_JSON_DEPTH:
            raise self.fail(f"is nested deeper than {MAX_JSON_DEPTH} levels.", path)
        if type(node) is str:
            if _has_lone_surrogate(node):
                raise self.fail("must not contain lone surrogate characters.", path)
            return node
        if type(node) is dict:
            return self.mapping(node, path, depth, seen)
        if type(node) is list:
            return self.array(node, path, depth, seen)
        return self.other(node, path, depth, seen)

    def other(self, node: object, path: _Path, depth: int, seen: frozenset[int]) -> JsonValue:
        if node is None or isinstance(node, bool):
            return node
        if isinstance(node, int):
            if node.bit_length() > 64:
                try:
                    str(node)  # Python refuses to write ints over sys.get_int_max_str_digits() digits
                except ValueError:
                    raise self.fail("is an integer too large to write as JSON.", path) from None
            return int(node)
        if isinstance(node, float):
            if not math.isfinite(node):
                raise self.fail("must not contain NaN or Infinity.", path)
            return node
        if isinstance(node, str):
            if _has_lone_surrogate(node):
                raise self.fail("must not contain lone surrogate characters.", path)
            return node
        if isinstance(node, Mapping):
            return self.mapping(node, path, depth, seen)
        if isinstance(node, list | tuple):
            return self.array(node, path, depth, seen)
        raise self.fail(f"contains a value of type {type(node).__name__}, which is not JSON.", path)

    def mapping(
        self, node: Mapping[object, object], path: _Path, depth: int, seen: frozenset[int]
    ) -> dict[str, JsonValue]:
        if id(node) in seen:
            raise self.fail("must not contain cycles.", path)
        inner = seen | {id(node)}
        out: dict[str, JsonValue] = {}
        for key, item in node.items():
            if not isinstance(key, str):
                raise self.fail(f"has a non-string key {key!r}.", path)
            if _has_lone_surrogate(key):
                raise self.fail("must not contain lone surrogate characters in keys.", path)
            out[key] = self.walk(item, (path, key), depth + 1, inner)
        return out

    def array(
        self, node: list[object] | tuple[object, ...], path: _Path, depth: int, seen: frozenset[int]
    ) -> list[JsonValue]:
        if id(node) in seen:
            raise self.fail("must not contain cycles.", path)
        inner = seen | {id(node)}
        return [self.walk(item, (path, index), depth + 1, inner) for index, item in enumerate(node)]


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
