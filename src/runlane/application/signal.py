"""Cooperative abort signals handed to task code (thread-safe: sync handlers run in threads)."""

import asyncio
import threading

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode


class AbortSignal:
    """``aborted`` flips once; async code may ``await signal.wait()``, sync code polls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aborted = False
        self._reason: str | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._children: dict[int, AbortSignal] = {}

    @property
    def aborted(self) -> bool:
        return self._aborted

    @property
    def reason(self) -> str | None:
        return self._reason

    def abort(self, reason: str = "aborted") -> None:
        with self._lock:
            if self._aborted:
                return
            self._aborted = True
            self._reason = reason
            waiters, self._waiters = self._waiters, []
            children = list(self._children.values())
            self._children.clear()
        for loop, event in waiters:
            if loop.is_closed():
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                event.set()
            else:
                loop.call_soon_threadsafe(event.set)
        for child in children:
            child.abort(reason)

    def throw_if_aborted(self) -> None:
        if self._aborted:
            raise RunlaneError(
                ErrorCode.OPERATION_CANCELLED,
                f"Operation cancelled ({self._reason}).",
                retryable=True,
                meta={"reason": self._reason},
            )

    async def wait(self) -> str | None:
        """Resolve when aborted; returns the reason."""
        event = asyncio.Event()
        with self._lock:
            if self._aborted:
                return self._reason
            self._waiters.append((asyncio.get_running_loop(), event))
        await event.wait()
        return self._reason

    def child(self) -> "AbortSignal":
        """A signal that aborts when this one does (and may also abort on its own)."""
        child = AbortSignal()
        self.adopt(child)
        return child

    def adopt(self, child: "AbortSignal") -> None:
        """Abort ``child`` when this signal aborts (at once if it already has)."""
        with self._lock:
            if not self._aborted:
                self._children[id(child)] = child
                return
        child.abort(self._reason or "aborted")

    def disown(self, child: "AbortSignal") -> None:
        """Stop propagating to ``child``: long-lived parents must not keep finished attempts alive."""
        with self._lock:
            self._children.pop(id(child), None)
