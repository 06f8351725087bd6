"""Read the JSON-lines logs the fault processes write (``runlane`` WARNING and above)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def log_records(log_dir: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(log_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                yield json.loads(line)


def messages(log_dir: Path, message: str, **fields: Any) -> list[dict[str, Any]]:
    """Records with this message whose fields match ``fields``."""
    return [
        record
        for record in log_records(log_dir)
        if record.get("msg") == message and all(record.get(k) == v for k, v in fields.items())
    ]
