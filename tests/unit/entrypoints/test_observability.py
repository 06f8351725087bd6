"""Log formats and W3C trace context helpers."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from runlane import ErrorCode, RunlaneError
from runlane.entrypoints.logging_setup import configure_logging
from runlane.entrypoints.settings import LogSettings
from runlane.entrypoints.tracing import check_traceparent, new_traceparent, trace_carrier

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def restore_runlane_logger() -> object:
    logger = logging.getLogger("runlane")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def _emit(fmt: str, level: str = "INFO") -> str:
    stream = io.StringIO()
    configure_logging(LogSettings(format=fmt, level=level), stream=stream)  # type: ignore[arg-type]
    logger = logging.getLogger("runlane")
    fields = {"run_id": "run_1", "task_id": "t", "queue": "q", "attempt": 1, "event_type": "run.succeeded"}
    logger.info("attempt finished", extra={"runlane": {**fields, "traceparent": TRACEPARENT}})
    logging.getLogger("runlane.worker").debug("hidden at INFO")
    return stream.getvalue()


@pytest.mark.usefixtures("restore_runlane_logger")
def test_json_lines_carry_the_runlane_fields() -> None:
    lines = _emit("json").splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["message"] == "attempt finished"
    assert line["level"] == "INFO"
    assert line["logger"] == "runlane"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert line["runlane"] == {
        "run_id": "run_1",
        "task_id": "t",
        "queue": "q",
        "attempt": 1,
        "event_type": "run.succeeded",
        "traceparent": TRACEPARENT,
    }


@pytest.mark.usefixtures("restore_runlane_logger")
def test_text_lines_and_reconfiguration_do_not_duplicate_handlers() -> None:
    _emit("json")
    text = _emit("text", "DEBUG")
    lines = text.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(
        f"INFO runlane: attempt finished run_id=run_1 task_id=t queue=q attempt=1 "
        f"event_type=run.succeeded traceparent={TRACEPARENT}"
    )
    assert "DEBUG runlane.worker: hidden at INFO" in lines[1]
    ours = [h for h in logging.getLogger("runlane").handlers if getattr(h, "_runlane_entrypoint_handler", 0)]
    assert len(ours) == 1


def test_traceparent_validation_and_generation() -> None:
    assert check_traceparent(TRACEPARENT) == TRACEPARENT
    fresh = new_traceparent()
    assert check_traceparent(fresh) == fresh
    assert fresh.endswith("-01")
    assert new_traceparent() != fresh
    for bad in (
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    ):
        with pytest.raises(RunlaneError) as caught:
            check_traceparent(bad)
        assert caught.value.code is ErrorCode.VALIDATION_FAILED
    assert trace_carrier(None) is None
    assert trace_carrier(TRACEPARENT, "vendor=1") == {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
