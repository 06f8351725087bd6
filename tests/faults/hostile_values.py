"""Hostile values for scenario 8: Hypothesis strategies and an exact (type-strict) comparison."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st

# Every character class that tends to break something: controls (NUL), lone surrogates, symbols.
_NASTY_CHARS = st.characters(
    min_codepoint=0, max_codepoint=0x10FFFF, categories=["Cs", "Cc", "Ll", "So", "Zs"]
)
TEXT = st.one_of(
    st.text(_NASTY_CHARS, max_size=20),
    st.sampled_from(["", "\x00", "\ud800", "a\udfffb", "'; drop table runs; --", '"', "\\u0000", "\u202e"]),
    st.integers(0, 300_000).map(lambda n: "x" * n),  # up to ~300 kB
)
INTEGERS = st.one_of(
    st.integers(),
    st.sampled_from([2**53 + 1, 2**63, -(2**63) - 1, 10**300]),
    # Past Python's 4300-digit str() limit; built lazily because even repr() of them fails.
    st.builds(lambda: -(10**4299)),
    st.builds(lambda: 10**4300),
    st.builds(lambda: 10**5000),
)
LEAVES = st.one_of(st.none(), st.booleans(), INTEGERS, st.floats(allow_nan=True, allow_infinity=True), TEXT)


def _nest(depth: int, as_object: bool) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"k": value} if as_object else [value]
    return value


DEEP = st.builds(_nest, st.integers(1, 200), st.booleans())
NOT_JSON = st.sampled_from([b"bytes", {1, 2}, object(), {1: "int key"}, (1, 2.5)]).map(lambda v: {"v": v})
HUGE = st.integers(900_000, 1_200_000).map(lambda n: {"blob": "y" * n})  # around the 1 MiB limit

PAYLOADS = st.one_of(
    st.recursive(
        LEAVES,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
        max_leaves=20,
    ),
    DEEP,
    NOT_JSON,
    HUGE,
)


def canonical(value: Any) -> Any:
    """A structure equal for two values only if they are the same JSON, types included.

    ``1 == 1.0 == True`` in Python, and ``-0.0 == 0.0``; none of those may change in storage.
    """
    if isinstance(value, bool) or value is None:
        return ("lit", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, list | tuple):
        return ("list", [canonical(item) for item in value])
    if isinstance(value, dict):
        return ("obj", [(key, canonical(item)) for key, item in value.items()])
    return ("other", repr(value))


def hostile_strings(seed: int = 8) -> dict[str, str]:
    """Names for ids, keys, queues and schemas: SQL metacharacters, controls, and 10 kB strings."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
    return {
        "sql_quote": "x'); drop table runs; --",
        "double_quote": 'x"; drop schema public cascade; --',
        "backslash": "a\\b\\'c",
        "percent": "%s %(x)s %%",
        "dollar": "$1 $$ $tag$",
        "unicode": "\U0001f642\u200b\u202eabc",
        "newline": "a\nb\r\n",
        "nul": "a\x00b",
        "lone_surrogate": "a\ud800b",
        "colon": "a:b",
        "empty": "",
        "10kB_random": "".join(rng.choice(letters) for _ in range(10_000)),
        "10kB_repeated": "x" * 10_000,
        "10kB_unicode": "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(3_400)),
    }


def describe(value: Any, limit: int = 60) -> str:
    """A short label; ``repr`` itself fails on integers past Python's digit limit."""
    try:
        return repr(value)[:limit]
    except ValueError:
        return f"<{type(value).__name__} too large to repr>"
