"""A sorted list of ``(sort value, id)`` keys: the in-memory stand-in for a B-tree index.

``bisect`` keeps inserts and removals cheap for the tens of thousands of rows tests create, and
lets due scans and keyset pages start at the right place instead of sorting every run per call.
"""

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from datetime import datetime

SortKey = tuple[datetime, str]


class SortedKeys:
    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[SortKey] = []

    def __len__(self) -> int:
        return len(self._items)

    def add(self, key: SortKey) -> None:
        insort(self._items, key)

    def discard(self, key: SortKey) -> None:
        index = bisect_left(self._items, key)
        if index < len(self._items) and self._items[index] == key:
            del self._items[index]

    def ascending(self, after: SortKey | None = None) -> Iterator[SortKey]:
        """Keys in ascending order, strictly after ``after`` when given."""
        start = 0 if after is None else bisect_right(self._items, after)
        # Iterate over a snapshot of positions; callers never mutate while iterating.
        for index in range(start, len(self._items)):
            yield self._items[index]

    def descending(self, before: SortKey | None = None) -> Iterator[SortKey]:
        """Keys in descending order, strictly before ``before`` when given."""
        stop = len(self._items) if before is None else bisect_left(self._items, before)
        for index in range(stop - 1, -1, -1):
            yield self._items[index]
