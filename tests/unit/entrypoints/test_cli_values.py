"""Command-line values: durations, times and JSON with errors naming the flag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runlane import RunlaneError
from runlane.entrypoints.cli_values import duration_option, json_option, name_list, time_option

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_durations() -> None:
    assert duration_option("30d", "--older-than").milliseconds == 30 * 86_400_000
    with pytest.raises(RunlaneError, match="--older-than: must be a duration"):
        duration_option("30 days", "--older-than")


def test_times_are_iso_or_durations_ago() -> None:
    assert time_option("2h", "--created-after", NOW) == NOW - timedelta(hours=2)
    iso = time_option("2025-01-31T10:00:00Z", "--created-after", NOW)
    assert iso == datetime(2025, 1, 31, 10, tzinfo=UTC)
    assert time_option("2025-01-31T10:00:00", "--x", NOW).tzinfo is UTC
    with pytest.raises(RunlaneError, match="--created-before: must be an ISO 8601 time"):
        time_option("yesterday", "--created-before", NOW)


def test_json_values_inline_or_from_a_file(tmp_path: Path) -> None:
    assert json_option(None, "--payload") is None
    assert json_option('{"a": [1, 2]}', "--payload") == {"a": [1, 2]}
    payload = tmp_path / "payload.json"
    payload.write_text('"text"')
    assert json_option(f"@{payload}", "--payload") == "text"
    with pytest.raises(RunlaneError, match="--payload: not valid JSON"):
        json_option("{", "--payload")
    with pytest.raises(RunlaneError, match="--payload: cannot read"):
        json_option(f"@{tmp_path / 'missing.json'}", "--payload")


def test_name_lists() -> None:
    assert name_list(None) == ()
    assert name_list(["a,b", " c ", ""]) == ("a", "b", "c")
