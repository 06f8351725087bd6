"""Duration strings: the grammar ^(0|[1-9][0-9]*)(ms|s|m|h|d)$ resolving to a positive safe integer of ms."""

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlane.domain.durations import (
    MAX_SAFE_INTEGER,
    DurationValue,
    format_milliseconds,
    parse_duration,
    to_duration,
)
from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode
from tests.unit.domain.builders import raises_code
from tests.unit.domain.strategies import PROPERTY_SETTINGS

GRAMMAR = re.compile(r"(0|[1-9][0-9]*)(ms|s|m|h|d)")
MULTIPLIER = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


@pytest.mark.parametrize(
    ("text", "milliseconds"),
    [
        ("500ms", 500),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("7d", 604_800_000),
        ("30d", 2_592_000_000),
        ("2m", 120_000),
        ("1ms", 1),
    ],
)
def test_documented_examples(text: str, milliseconds: int) -> None:
    value = parse_duration(text)
    assert value == DurationValue(duration=text, milliseconds=milliseconds)
    assert str(value) == text
    assert value.to_timedelta() == timedelta(milliseconds=milliseconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "10",
        "0s",
        "0ms",
        "0d",
        "00s",
        "05s",
        "007ms",
        "5 m",
        " 5m",
        "5m ",
        "5m\n",
        "\n5m",
        "1.5h",
        ".5s",
        "-1s",
        "+1s",
        "1w",
        "1y",
        "1S",
        "1H",
        "1M",
        "1 ms",
        "1sec",
        "1mss",
        "ms",
        "s",
        "1e3ms",
        "1_000ms",
        "\uff11s",  # a full-width digit one
        "1s1m",
    ],
)
def test_malformed_strings_are_rejected(text: str) -> None:
    error = raises_code(ErrorCode.VALIDATION_FAILED, parse_duration, text)
    assert error.meta == {"field": "duration"}


@pytest.mark.parametrize("value", [None, 5, 5.0, b"5s", ["5s"], True])
def test_non_strings_are_rejected(value: object) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, parse_duration, value)


def test_configuration_boundaries_get_configuration_invalid_and_the_field_name() -> None:
    error = raises_code(
        ErrorCode.CONFIGURATION_INVALID,
        parse_duration,
        "5 minutes",
        code=ErrorCode.CONFIGURATION_INVALID,
        field="every",
    )
    assert error.meta == {"field": "every"}
    assert "every" in error.message


def test_values_beyond_the_safe_integer_range_are_rejected() -> None:
    days = MAX_SAFE_INTEGER // 86_400_000
    assert parse_duration(f"{days}d").milliseconds == days * 86_400_000
    raises_code(ErrorCode.VALIDATION_FAILED, parse_duration, f"{days + 1}d")
    assert parse_duration(f"{MAX_SAFE_INTEGER}ms").milliseconds == MAX_SAFE_INTEGER
    raises_code(ErrorCode.VALIDATION_FAILED, parse_duration, f"{MAX_SAFE_INTEGER + 1}ms")


@PROPERTY_SETTINGS
@given(st.integers(min_value=1, max_value=10**9), st.sampled_from(sorted(MULTIPLIER)))
def test_every_valid_number_and_unit_resolves_to_n_times_the_multiplier(n: int, unit: str) -> None:
    text = f"{n}{unit}"
    expected = n * MULTIPLIER[unit]
    if expected > MAX_SAFE_INTEGER:
        raises_code(ErrorCode.VALIDATION_FAILED, parse_duration, text)
        return
    value = parse_duration(text)
    assert value.duration == text
    assert value.milliseconds == expected
    assert to_duration(text) == value
    assert to_duration(value) is value


AFFIXES = st.sampled_from(["", "", " ", "\n", "\t", "-", "+", "0", ".", ".5", "s", "ms", "x", "\u0660"])
# Valid strings with a random prefix/suffix: the near misses a loose grammar would let through.
near_misses = st.tuples(AFFIXES, st.from_regex(GRAMMAR, fullmatch=True), AFFIXES).map("".join)


@PROPERTY_SETTINGS
@given(
    st.text(alphabet="0123456789msdh .-+_eE\n\t", max_size=8)
    | st.text(max_size=8)
    | st.from_regex(GRAMMAR, fullmatch=True)
    | near_misses
)
def test_a_string_parses_exactly_when_it_matches_the_grammar_and_is_positive(text: str) -> None:
    match = GRAMMAR.fullmatch(text)
    milliseconds = 0 if match is None else int(match.group(1)) * MULTIPLIER[match.group(2)]
    if 0 < milliseconds <= MAX_SAFE_INTEGER:
        assert parse_duration(text).milliseconds == milliseconds
        return
    with pytest.raises(RunlaneError) as excinfo:
        parse_duration(text)
    assert excinfo.value.code is ErrorCode.VALIDATION_FAILED


@PROPERTY_SETTINGS
@given(
    n=st.integers(min_value=1, max_value=10**6),
    unit=st.sampled_from(sorted(MULTIPLIER)),
    position=st.integers(min_value=0, max_value=12),
    extra=st.sampled_from([" ", "\n", "\r", "\t", "\x0b", ".", ",", "-", "+", "_", "x", "\u0660", "\u00a0"]),
)
def test_one_foreign_character_anywhere_makes_a_valid_duration_invalid(
    n: int, unit: str, position: int, extra: str
) -> None:
    text = f"{n}{unit}"
    position = min(position, len(text))
    mutated = text[:position] + extra + text[position:]
    with pytest.raises(RunlaneError) as excinfo:
        parse_duration(mutated)
    assert excinfo.value.code is ErrorCode.VALIDATION_FAILED


@PROPERTY_SETTINGS
@given(st.integers(min_value=1, max_value=10**12))
def test_timedeltas_of_whole_milliseconds_are_accepted(milliseconds: int) -> None:
    value = to_duration(timedelta(milliseconds=milliseconds))
    assert value.milliseconds == milliseconds
    assert value.duration == f"{milliseconds}ms"
    assert parse_duration(value.duration) == value


@pytest.mark.parametrize(
    "value",
    [timedelta(0), timedelta(milliseconds=-1), timedelta(microseconds=1500), timedelta(microseconds=1)],
)
def test_timedeltas_must_be_positive_whole_milliseconds(value: timedelta) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, to_duration, value)
    raises_code(ErrorCode.CONFIGURATION_INVALID, to_duration, value, code=ErrorCode.CONFIGURATION_INVALID)


@pytest.mark.parametrize(
    ("milliseconds", "text"),
    [(1, "1ms"), (1_500, "1500ms"), (90_000, "90s"), (300_000, "5m"), (7_200_000, "2h"), (172_800_000, "2d")],
)
def test_format_milliseconds_uses_the_largest_exact_unit(milliseconds: int, text: str) -> None:
    assert format_milliseconds(milliseconds) == text
    assert parse_duration(text).milliseconds == milliseconds


@PROPERTY_SETTINGS
@given(st.integers(min_value=1, max_value=MAX_SAFE_INTEGER))
def test_format_milliseconds_round_trips(milliseconds: int) -> None:
    assert parse_duration(format_milliseconds(milliseconds)).milliseconds == milliseconds
