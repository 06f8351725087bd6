"""Pagination values: default 50, clamped to 500; cursors are opaque non-empty strings."""

from typing import Any

import pytest

from runlane.domain.pages import Page, PaginationParams
from runlane.domain.vocabulary import ErrorCode
from tests.unit.domain.builders import raises_code


@pytest.mark.parametrize(
    ("limit", "clamped"), [(None, 50), (1, 1), (50, 50), (500, 500), (501, 500), (10**9, 500)]
)
def test_limits_are_defaulted_and_clamped(limit: int | None, clamped: int) -> None:
    assert PaginationParams(limit=limit).clamped_limit == clamped


@pytest.mark.parametrize("limit", [0, -1, True, 1.5, "10"])
def test_bad_limits_are_rejected(limit: Any) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, PaginationParams, limit=limit)


@pytest.mark.parametrize("cursor", ["", 5, b"c"])
def test_bad_cursors_are_rejected(cursor: Any) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, PaginationParams, cursor=cursor)


def test_pages() -> None:
    page = Page(data=(1, 2), next_cursor="opaque")
    assert page.data == (1, 2)
    assert page.next_cursor == "opaque"
    assert Page(data=()).next_cursor is None
