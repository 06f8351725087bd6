"""``emit``: the one way a script talks to its test (a JSON object per stdout line)."""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

_EMIT_LOCK = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stdout, flushed at once (the test reads it while the process runs)."""
    line = json.dumps({"event": event, "pid": os.getpid(), **fields}, default=str)
    with _EMIT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
