"""SIGTERM/SIGINT for long-running commands: the first asks for a graceful stop, the second exits now.

Exit code 130 on the second signal is immediate (``os._exit``): in-flight sync handlers run in
threads that would otherwise keep the interpreter alive. Their leases expire and ``tick`` recovers
the runs.
"""

import asyncio
import logging
import os
import signal
import sys
from types import TracebackType

SECOND_SIGNAL_EXIT_CODE = 130
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
logger = logging.getLogger("runlane.shutdown")


def exit_now(code: int, message: str) -> None:
    """Flush what we can and leave without running cleanup (threads may still be busy)."""
    for handler in logging.getLogger("runlane").handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()
    os._exit(code)


class ShutdownSignals:
    """Installed with ``loop.add_signal_handler`` while the ``with`` block runs."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.received: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> "ShutdownSignals":
        self._loop = asyncio.get_running_loop()
        for signum in _SIGNALS:
            self._loop.add_signal_handler(signum, self._on_signal, signum)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._loop is not None
        for signum in _SIGNALS:
            self._loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.requested.is_set():
            exit_now(SECOND_SIGNAL_EXIT_CODE, f"runlane: second signal ({name}); exiting now")
            return
        self.received = name
        logger.info("shutdown requested", extra={"runlane": {"signal": name}})
        self.requested.set()

    async def wait(self) -> None:
        await self.requested.wait()
