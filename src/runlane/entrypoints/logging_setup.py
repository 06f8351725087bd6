"""Configure the ``runlane`` logger from settings: text lines for people, JSON lines for collectors.

The runtime passes ids (run_id, task_id, queue, attempt, event_type, traceparent) in the
``runlane`` extra dict, never payloads; both formats print them. Logs go to stderr so that
``--json`` output on stdout stays machine-parseable.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from runlane.entrypoints.settings import LogSettings

LOGGER_NAME = "runlane"
_INSTALLED = "_runlane_entrypoint_handler"


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "runlane", None)
    return dict(fields) if isinstance(fields, dict) else {}


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ``runlane`` fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = _fields(record)
        if fields:
            line["runlane"] = fields
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2025-01-01T00:00:00.000Z INFO runlane: attempt started run_id=... task_id=...``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        text = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if fields:
            text = f"{text} {fields}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


def configure_logging(settings: LogSettings, *, stream: IO[str] | None = None) -> logging.Logger:
    """Install (or replace) one handler on the ``runlane`` logger; idempotent."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if getattr(handler, _INSTALLED, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _INSTALLED, True)
    handler.setFormatter(JsonLineFormatter() if settings.format == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(settings.level)
    logger.propagate = False
    return logger


def log_delivery_failure(logger: logging.Logger, failure: Any) -> None:
    """One warning per SQS wakeup that could not be handled (Lambda batches and the consumer)."""
    logger.warning(
        "sqs delivery failed",
        extra={
            "runlane": {
                "phase": failure.phase.value,
                "provider_message_id": failure.provider_message_id,
                "run_id": None if failure.delivery_message is None else failure.delivery_message.run_id,
                "error": str(failure.cause),
            }
        },
    )
