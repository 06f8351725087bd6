"""Runs and their event histories for one storage instance, with the indexes the queries need.

Every projection change goes through :meth:`RunStore.put`, which keeps the indexes consistent:
per environment and status the ``(available_at, id)`` keys (due scans, expired leases, pruning)
and the ``(created_at, id)`` keys (operator lists). Records are frozen; the store hands out the
objects it holds.
"""

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.vocabulary import RunStatus
from runlane.infrastructure.memory.sorted_keys import SortedKeys, SortKey


@dataclass(slots=True)
class EnvironmentRuns:
    runs: dict[str, RunRecord] = field(default_factory=dict)
    events: dict[str, list[RunEventRecord]] = field(default_factory=dict)
    by_status: dict[RunStatus, SortedKeys] = field(
        default_factory=lambda: {status: SortedKeys() for status in RunStatus}
    )
    by_created: SortedKeys = field(default_factory=SortedKeys)


def availability_key(run: RunRecord) -> SortKey:
    return (run.available_at, run.id)


class RunStore:
    def __init__(self) -> None:
        self._environments: dict[str, EnvironmentRuns] = {}

    def environment(self, name: str) -> EnvironmentRuns:
        state = self._environments.get(name)
        if state is None:
            state = self._environments[name] = EnvironmentRuns()
        return state

    def get(self, environment: str, run_id: str) -> RunRecord | None:
        state = self._environments.get(environment)
        return None if state is None else state.runs.get(run_id)

    def events(self, environment: str, run_id: str) -> list[RunEventRecord]:
        state = self._environments.get(environment)
        if state is None:
            return []
        return state.events.get(run_id, [])

    def put(
        self, environment: str, old: RunRecord | None, new: RunRecord, records: Iterable[RunEventRecord]
    ) -> None:
        state = self.environment(environment)
        if old is None:
            state.by_created.add((new.created_at, new.id))
            state.events[new.id] = []
        else:
            state.by_status[old.status].discard(availability_key(old))
        state.by_status[new.status].add(availability_key(new))
        state.runs[new.id] = new
        state.events[new.id].extend(records)

    def replace_projection(self, environment: str, old: RunRecord, new: RunRecord) -> None:
        """Swap a projection without new events (heartbeats); availability must not change."""
        self.put(environment, old, new, ())

    def delete(self, environment: str, run: RunRecord) -> None:
        state = self.environment(environment)
        state.by_status[run.status].discard(availability_key(run))
        state.by_created.discard((run.created_at, run.id))
        state.runs.pop(run.id, None)
        state.events.pop(run.id, None)

    def by_availability(self, environment: str, statuses: Iterable[RunStatus]) -> Iterator[RunRecord]:
        """Runs in ``statuses`` ordered by ``(available_at, id)`` (a lazy merge of the status indexes)."""
        state = self._environments.get(environment)
        if state is None:
            return iter(())
        streams = [state.by_status[status].ascending() for status in dict.fromkeys(statuses)]
        return (state.runs[run_id] for _, run_id in heapq.merge(*streams))

    def in_statuses(self, environment: str, statuses: Iterable[RunStatus]) -> Iterator[RunRecord]:
        state = self._environments.get(environment)
        if state is None:
            return
        for status in dict.fromkeys(statuses):
            for _, run_id in state.by_status[status].ascending():
                yield state.runs[run_id]
