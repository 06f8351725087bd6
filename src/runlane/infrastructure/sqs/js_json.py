"""JSON text exactly as JavaScript's ``JSON.stringify`` writes it, for byte-identical wakeup bodies.

Three details differ from ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``:

* JavaScript strings are UTF-16, so a high surrogate followed by a low one is one character; Python
  keeps them as two code points. They are joined first.
* A lone surrogate cannot be written as UTF-8; JavaScript escapes it (``\\ud800``, lowercase hex).
* JavaScript orders integer-like keys ("array indices") first, ascending, then the other keys in
  insertion order.
"""

import json
import re
from collections.abc import Mapping, Sequence

_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ARRAY_INDEX = re.compile(r"^(?:0|[1-9][0-9]*)$")
_MAX_ARRAY_INDEX = 2**32 - 2


def join_surrogate_pairs(text: str) -> str:
    """Turn each high+low surrogate code point pair into the character JavaScript would see."""

    def join(match: re.Match[str]) -> str:
        high, low = match.group()[0], match.group()[1]
        return chr(0x10000 + ((ord(high) - 0xD800) << 10) + (ord(low) - 0xDC00))

    return _SURROGATE_PAIR.sub(join, text)


def well_formed(text: str) -> str:
    """``text`` as JavaScript's ``TextEncoder`` sees it: pairs joined, lone surrogates as U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", join_surrogate_pairs(text))


def _quote(text: str) -> str:
    quoted = json.dumps(join_surrogate_pairs(text), ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def _is_array_index(key: str) -> bool:
    return _ARRAY_INDEX.match(key) is not None and int(key) <= _MAX_ARRAY_INDEX


def js_key_order(keys: Sequence[str]) -> list[str]:
    """JavaScript's own-property order: array indices ascending, then strings by insertion."""
    indices = sorted((key for key in keys if _is_array_index(key)), key=int)
    return indices + [key for key in keys if not _is_array_index(key)]


def js_json_stringify(value: object) -> str:
    """Compact JSON of ``None``/bool/int/str/list/dict values, byte-identical to ``JSON.stringify``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, Mapping):
        keys = [join_surrogate_pairs(key) for key in value]
        originals = dict(zip(keys, value, strict=True))
        members = (f"{_quote(key)}:{js_json_stringify(value[originals[key]])}" for key in js_key_order(keys))
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(js_json_stringify(item) for item in value) + "]"
    raise TypeError(f"js_json_stringify does not handle {type(value).__name__} values.")
