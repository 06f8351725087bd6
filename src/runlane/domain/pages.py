"""Cursor pagination values: cursors are opaque strings owned by storage."""

from dataclasses import dataclass
from typing import Generic, TypeVar

from runlane.domain.defaults import CONTRACT_DEFAULTS
from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PaginationParams:
    limit: int | None = None
    cursor: str | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1
        ):
            raise RunlaneError(ErrorCode.VALIDATION_FAILED, "limit must be a positive integer.")
        if self.cursor is not None and (not isinstance(self.cursor, str) or not self.cursor):
            raise RunlaneError(ErrorCode.VALIDATION_FAILED, "cursor must be a non-empty string.")

    @property
    def clamped_limit(self) -> int:
        """The limit storage uses: default 50, at most 500."""
        if self.limit is None:
            return CONTRACT_DEFAULTS.pagination.limit
        return min(self.limit, CONTRACT_DEFAULTS.pagination.max_limit)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    data: tuple[T, ...]
    next_cursor: str | None = None
