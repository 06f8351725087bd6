"""A lane is one storage plus one transport with a fixed lifecycle order; it adds no semantics."""

import inspect
from dataclasses import dataclass, field

from runlane.domain.errors import RunlaneError, configuration_invalid
from runlane.domain.ids import IdKind, as_id
from runlane.domain.vocabulary import ErrorCode
from runlane.ports.capabilities import LaneCapabilities, StorageCapabilities, TransportCapabilities
from runlane.ports.storage import StorageAdapter
from runlane.ports.transport import TransportAdapter

_STORAGE_METHODS = (
    "append_run_events",
    "append_many_run_events",
    "claim_due_runs",
    "heartbeat_run_lease",
    "get_run",
    "get_run_by_idempotency_key",
    "reset_idempotency_key",
    "list_runs",
    "list_run_events",
    "list_due_runs",
    "list_expired_leases",
    "reserve_dispatch",
    "release_expired_reservations",
    "claim_outbox_messages",
    "complete_outbox_messages",
    "list_outbox_messages",
    "prune_runs",
)


@dataclass(eq=False, kw_only=True)
class Lane:
    name: str
    storage: StorageAdapter
    transport: TransportAdapter
    capabilities: LaneCapabilities
    _started: bool = field(default=False, repr=False)

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> None:
        """Start storage, then transport; if transport fails to start, close storage and re-raise."""
        if self._started:
            return
        await _call_hook(self.storage, "start")
        try:
            await _call_hook(self.transport, "start")
        except BaseException:
            await _call_hook(self.storage, "close")
            raise
        self._started = True

    async def close(self) -> None:
        """Close transport, then storage (always), then re-raise the first error."""
        self._started = False
        first: BaseException | None = None
        try:
            await _call_hook(self.transport, "close")
        except BaseException as exc:
            first = exc
        try:
            await _call_hook(self.storage, "close")
        except BaseException as exc:
            first = first or exc
        if first is not None:
            raise first


async def _call_hook(adapter: object, hook: str) -> None:
    method = getattr(adapter, hook, None)
    if method is None:
        return
    result = method()
    if inspect.isawaitable(result):
        await result


def _check_adapter(kind: str, adapter: object, methods: tuple[str, ...], capabilities_type: type) -> None:
    if adapter is None:
        raise configuration_invalid(f"create_lane needs a {kind} adapter.")
    missing = [m for m in methods if not callable(getattr(adapter, m, None))]
    if missing:
        raise configuration_invalid(
            f"{kind} adapter {type(adapter).__name__} is incomplete: missing {', '.join(missing)}.",
            missing=missing,
        )
    if not isinstance(getattr(adapter, "capabilities", None), capabilities_type):
        raise configuration_invalid(
            f"{kind} adapter must expose capabilities as {capabilities_type.__name__}."
        )
    name = getattr(adapter, "name", None)
    if not isinstance(name, str) or not name:
        raise configuration_invalid(f"{kind} adapter must have a non-empty name.")
    for hook in ("start", "close"):
        if getattr(adapter, hook, None) is not None and not callable(getattr(adapter, hook)):
            raise configuration_invalid(f"{kind} adapter {hook} must be callable.")


def create_lane(
    *,
    storage: StorageAdapter,
    transport: TransportAdapter,
    name: str = "lane",
    operator_reads: bool = True,
    production_durable: bool = False,
) -> Lane:
    """Compose adapters, keeping the original instances; malformed input is ``configuration_invalid``."""
    try:
        as_id(IdKind.LANE, name, code=ErrorCode.CONFIGURATION_INVALID)
    except RunlaneError as exc:
        raise configuration_invalid(f"lane name is invalid: {exc.message}") from exc
    if not isinstance(operator_reads, bool) or not isinstance(production_durable, bool):
        raise configuration_invalid("operator_reads and production_durable must be bools.")
    _check_adapter("storage", storage, _STORAGE_METHODS, StorageCapabilities)
    _check_adapter("transport", transport, ("publish_wakeups",), TransportCapabilities)
    return Lane(
        name=name,
        storage=storage,
        transport=transport,
        capabilities=LaneCapabilities(
            operator_reads=operator_reads,
            production_durable=production_durable,
            storage=storage.capabilities,
            transport=transport.capabilities,
        ),
    )
