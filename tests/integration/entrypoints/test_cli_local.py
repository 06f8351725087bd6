"""The ``runlane`` console script on the local lane: commands whose output means something in one process."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.support.console_script import (
    BASIC_APP,
    SCHEDULED_APP,
    CliProcess,
    assert_one_clean_error,
    clean_env,
    run_cli,
    wait_until,
)


@pytest.fixture
def env() -> dict[str, str]:
    return clean_env(RUNLANE_APP=BASIC_APP, RUNLANE_LANE="local")


def test_demo_still_runs_every_job_shape() -> None:
    result = run_cli("demo", env=clean_env(), timeout=120).expect(0)
    assert "demo finished: every job shape behaved as documented" in result.stdout


def test_trigger_prints_the_created_run_as_wire_json(env: dict[str, str]) -> None:
    result = run_cli(
        "trigger", "test.echo", "--payload", '{"n": 1}', "--idempotency-key", "k1", "--json", env=env
    ).expect(0)
    body = result.json()
    assert body["outcome"] == "created"
    assert body["run"]["taskId"] == "test.echo"
    assert body["run"]["queue"] == "default"
    assert body["run"]["status"] == "queued"
    assert body["run"]["payload"] == {"n": 1}
    assert body["run"]["idempotencyKey"] == "k1"
    assert body["run"]["id"].startswith("run_")


def test_trigger_human_output_and_delay(env: dict[str, str]) -> None:
    result = run_cli("trigger", "test.echo", "--delay", "1h", env=env).expect(0)
    assert result.stdout.startswith("created run run_")
    assert "scheduled" in result.stdout


def test_runs_list_json_is_valid_on_an_empty_local_lane(env: dict[str, str]) -> None:
    result = run_cli("runs", "list", "--json", "--status", "queued,succeeded", env=env).expect(0)
    assert result.json() == {"data": [], "nextCursor": None}


def test_drain_worker_executes_the_runs_a_scheduled_app_seeds(tmp_path: Path) -> None:
    env = clean_env(RUNLANE_APP=SCHEDULED_APP, RUNLANE_LOG_FORMAT="json")
    result = run_cli("worker", "--mode", "drain", "--with-tick", env=env).expect(0)
    assert "worker stopped: executed 1 attempt(s)" in result.stdout
    finished = [line for line in result.json_lines() if line["message"] == "attempt finished"]
    assert len(finished) == 1
    assert finished[0]["runlane"]["task_id"] == "test.ping"
    assert finished[0]["runlane"]["event_type"] == "run.succeeded"


def test_drain_worker_without_tick_finds_nothing(tmp_path: Path) -> None:
    result = run_cli("worker", "--mode", "drain", env=clean_env(RUNLANE_APP=SCHEDULED_APP)).expect(0)
    assert "executed 0 attempt(s)" in result.stdout


def test_tick_once_reports_counts_as_json() -> None:
    result = run_cli("--app", SCHEDULED_APP, "tick", "--json", env=clean_env()).expect(0)
    counts = result.json()
    assert counts["materialized_schedules"] == 1
    assert set(counts) >= {"expired_leases", "published_wakeups", "requested_deliveries"}


def test_tick_every_loops_until_sigterm_then_exits_zero() -> None:
    process = CliProcess("tick", "--every", "100ms", "--app", SCHEDULED_APP, env=clean_env())
    try:
        wait_until(lambda: process.stdout.count("tick:") >= 3, timeout=30, what="three ticks")
        process.signal(signal.SIGTERM)
        result = process.wait(timeout=15).expect(0)
        assert "materialized_schedules=1" in result.stdout  # the first tick materialised the schedule
    finally:
        process.kill()


def test_poll_worker_stops_on_sigterm_with_exit_zero(env: dict[str, str]) -> None:
    process = CliProcess("worker", "--poll-interval", "50ms", env=env)
    try:
        wait_until(lambda: "worker started" in process.stderr, timeout=30, what="worker start")
        process.signal(signal.SIGINT)
        result = process.wait(timeout=15).expect(0)
        assert "worker stopped: executed 0 attempt(s)" in result.stdout
        assert "Traceback" not in result.stderr
    finally:
        process.kill()


def test_poll_worker_with_tick_runs_maintenance_inside_the_worker() -> None:
    env = clean_env(RUNLANE_APP=SCHEDULED_APP, RUNLANE_TICK_INTERVAL="200ms")
    process = CliProcess("worker", "--with-tick", "--poll-interval", "50ms", env=env)
    try:
        wait_until(lambda: process.stderr.count("attempt finished") >= 2, timeout=30, what="two runs")
        process.signal(signal.SIGTERM)
        result = process.wait(timeout=15).expect(0)
    finally:
        process.kill()
    executed = int(result.stdout.split("executed ")[1].split(" ")[0])
    assert executed >= 2
    assert result.stderr.count("schedule materialized") >= 2


def test_worker_profile_selects_the_profiles_queues(env: dict[str, str]) -> None:
    env = {**env, "RUNLANE_LOG_FORMAT": "json"}
    result = run_cli("worker", "--mode", "drain", "--profile", "mail", env=env).expect(0)
    started = [line for line in result.json_lines() if line["message"] == "worker started"]
    assert started[0]["runlane"]["queues"] == "emails"


def test_worker_freezes_its_startup_heap_unless_told_not_to(env: dict[str, str]) -> None:
    env = {**env, "RUNLANE_LOG_FORMAT": "json"}
    tuned = run_cli("worker", "--mode", "drain", env=env).expect(0)
    (started,) = [line for line in tuned.json_lines() if line["message"] == "worker started"]
    assert started["runlane"]["gc_frozen_objects"] > 10_000  # SQLAlchemy, pydantic, the app...
    plain = run_cli("worker", "--mode", "drain", env={**env, "RUNLANE_WORKER_GC_TUNING": "false"}).expect(0)
    (started,) = [line for line in plain.json_lines() if line["message"] == "worker started"]
    assert "gc_frozen_objects" not in started["runlane"]


def test_settings_from_a_toml_config_file(tmp_path: Path) -> None:
    config = tmp_path / "runlane.toml"
    config.write_text(f'app = "{BASIC_APP}"\nenvironment = "from-toml"\n[worker]\nconcurrency = 3\n')
    result = run_cli("--config", str(config), "trigger", "test.echo", "--json", env=clean_env()).expect(0)
    assert result.json()["run"]["environment"] == {"name": "from-toml"}


# -- error paths: one clear line on stderr, never a traceback -------------------------------------


def test_missing_app_module() -> None:
    result = run_cli("runs", "list", "--app", "no_such_module_xyz:app", env=clean_env())
    assert_one_clean_error(result, contains="module 'no_such_module_xyz' was not found")


def test_missing_app_attribute() -> None:
    result = run_cli("worker", "--app", "tests.support.apps.basic:nope", env=clean_env())
    assert_one_clean_error(result, contains="has no attribute 'nope'")


def test_attribute_that_is_not_an_app() -> None:
    result = run_cli("tick", "--app", "tests.support.apps.basic:not_an_app", env=clean_env())
    assert_one_clean_error(result, contains="not a RunlaneApp")


def test_no_app_configured() -> None:
    result = run_cli("runs", "list", env=clean_env())
    assert_one_clean_error(result, contains="RUNLANE_APP: no app configured")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("RUNLANE_LANE", "redis", "RUNLANE_LANE: must be one of local, postgres, postgres-sqs"),
        ("RUNLANE_WORKER_CONCURRENCY", "0", "RUNLANE_WORKER_CONCURRENCY: must be at least 1"),
        ("RUNLANE_WORKER_LEASE_DURATION", "5 seconds", "RUNLANE_WORKER_LEASE_DURATION: must be a duration"),
        ("RUNLANE_LOG_FORMAT", "xml", "RUNLANE_LOG_FORMAT: must be one of text, json"),
        ("RUNLANE_SQS_QUEUES", "{not json", "RUNLANE_SQS_QUEUES: must be JSON"),
    ],
)
def test_bad_settings_name_the_variable(variable: str, value: str, expected: str) -> None:
    result = run_cli("worker", env=clean_env(RUNLANE_APP=BASIC_APP, **{variable: value}))
    assert_one_clean_error(result, contains=expected)


def test_postgres_lane_without_a_database_url() -> None:
    result = run_cli("runs", "list", env=clean_env(RUNLANE_APP=BASIC_APP, RUNLANE_LANE="postgres"))
    assert_one_clean_error(result, contains="RUNLANE_DATABASE_URL: required when RUNLANE_LANE is postgres")


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens once the socket is closed


def test_unreachable_database() -> None:
    env = clean_env(
        RUNLANE_APP=BASIC_APP,
        RUNLANE_LANE="postgres",
        RUNLANE_DATABASE_URL=f"postgresql://runlane@127.0.0.1:{_closed_port()}/runlane",
    )
    result = run_cli("runs", "list", "--json", env=env, timeout=60)
    result.expect(1)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error [")
    assert "Connection refused" in lines[0] or "cannot reach" in lines[0]
    assert result.stdout == ""


def test_unknown_task_is_a_runlane_error(env: dict[str, str]) -> None:
    result = run_cli("trigger", "no.such.task", env=env)
    assert_one_clean_error(result, contains="error [task_not_found]")


def test_bad_payload_json(env: dict[str, str]) -> None:
    result = run_cli("trigger", "test.echo", "--payload", "{oops", env=env)
    assert_one_clean_error(result, contains="--payload: not valid JSON")


def test_unknown_run_id(env: dict[str, str]) -> None:
    result = run_cli("runs", "show", "run_does_not_exist", "--json", env=env)
    assert_one_clean_error(result, contains="error [run_not_found]")
    assert result.stdout == ""


def test_usage_errors_exit_two(env: dict[str, str]) -> None:
    assert run_cli("worker", "--concurrency", "0", env=env).returncode == 2
    assert run_cli("runs", "list", "--no-such-flag", env=env).returncode == 2
    assert run_cli("migrate", env=env).returncode == 2  # neither --print nor --apply


def test_missing_config_file() -> None:
    result = run_cli("--config", "/nonexistent/runlane.toml", "runs", "list", env=clean_env())
    assert_one_clean_error(
        result, contains="--config: config file '/nonexistent/runlane.toml' does not exist"
    )


def test_unexpected_errors_exit_70_with_one_line_unless_debug() -> None:
    env = clean_env(RUNLANE_APP="tests.support.apps.basic:exploding_app")
    result = run_cli("runs", "list", env=env)
    assert_one_clean_error(
        result, code=70, contains="error: unexpected ValueError: the app factory has a bug (run with --debug"
    )
    debug = run_cli("--debug", "runs", "list", env=env).expect(70)
    assert "Traceback" in debug.stderr
    assert "exploding_app" in debug.stderr
