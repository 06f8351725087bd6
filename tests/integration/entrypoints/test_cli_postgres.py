"""The ``runlane`` console script against real Postgres: every command in its own process."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from tests.support.console_script import (
    CliProcess,
    assert_one_clean_error,
    run_cli,
    wait_until,
)
from tests.support.pg_cluster import PostgresCluster

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def trigger(env: dict[str, str], task: str, payload: object = None, *extra: str) -> dict[str, Any]:
    args = ["trigger", task, "--json", *extra]
    if payload is not None:
        args += ["--payload", json.dumps(payload)]
    body: dict[str, Any] = run_cli(*args, env=env).expect(0).json()
    return body


def show(env: dict[str, str], run_id: str) -> dict[str, Any]:
    body: dict[str, Any] = run_cli("runs", "show", run_id, "--json", env=env).expect(0).json()
    return body


def test_migrate_print_and_rerun_apply(pg_base_env: dict[str, str], pg_schema: str) -> None:
    printed = run_cli("migrate", "--print", env=pg_base_env).expect(0)
    assert f'CREATE SCHEMA IF NOT EXISTS "{pg_schema}"' in printed.stdout
    assert "schema_migrations" in printed.stdout
    again = run_cli("migrate", "--apply", env=pg_base_env).expect(0)
    assert f"schema {pg_schema} is up to date" in again.stdout


def test_trigger_drain_read_rerun_and_prune(pg_env: dict[str, str], tmp_path: Path) -> None:
    first = trigger(pg_env, "test.echo", {"marker_dir": str(tmp_path), "n": 1})
    run_id = first["run"]["id"]
    assert first["outcome"] == "created"

    drained = run_cli("worker", "--mode", "drain", env=pg_env).expect(0)
    assert "executed 1 attempt(s)" in drained.stdout
    assert json.loads((tmp_path / f"{run_id}.done").read_text()) == {"marker_dir": str(tmp_path), "n": 1}

    listed = run_cli("runs", "list", "--json", env=pg_env).expect(0).json()
    assert [(run["id"], run["status"]) for run in listed["data"]] == [(run_id, "succeeded")]
    assert listed["nextCursor"] is None
    assert "payload" not in listed["data"][0]  # summaries leave payloads out

    detail = show(pg_env, run_id)
    assert detail["run"]["status"] == "succeeded"
    assert [event["type"] for event in detail["events"]] == [
        "run.created",
        "run.delivery_requested",
        "run.lease_claimed",
        "run.succeeded",
    ]
    assert [(a["attempt"], a["status"]) for a in detail["attempts"]] == [(1, "succeeded")]

    child = run_cli("runs", "rerun", run_id, "--json", env=pg_env).expect(0).json()
    child_id = child["run"]["id"]
    assert child["run"]["source"] == {"type": "rerun", "sourceRunId": run_id}
    run_cli("worker", "--mode", "drain", env=pg_env).expect(0)
    assert show(pg_env, child_id)["run"]["status"] == "succeeded"

    time.sleep(0.05)  # both runs must be strictly older than the cutoff
    dry = run_cli("runs", "prune", "--older-than", "10ms", "--dry-run", "--json", env=pg_env).expect(0).json()
    assert dry["dryRun"] is True
    assert dry["wouldDelete"] == 2
    assert len(run_cli("runs", "list", "--json", env=pg_env).expect(0).json()["data"]) == 2

    pruned = run_cli("runs", "prune", "--older-than", "10ms", "--limit", "1", "--json", env=pg_env).expect(0)
    assert pruned.json()["deleted"] == 1
    remaining = run_cli("runs", "list", "--json", env=pg_env).expect(0).json()["data"]
    assert len(remaining) == 1


def test_list_filters_and_cursor(pg_env: dict[str, str]) -> None:
    ids = [trigger(pg_env, "test.echo", {"i": i})["run"]["id"] for i in range(3)]
    email = trigger(pg_env, "test.email", {"to": "ada@example.com"})["run"]["id"]
    first = run_cli("runs", "list", "--json", "--limit", "2", env=pg_env).expect(0).json()
    assert len(first["data"]) == 2
    assert first["nextCursor"]
    rest = run_cli("runs", "list", "--json", "--limit", "2", "--cursor", first["nextCursor"], env=pg_env)
    seen = [run["id"] for run in first["data"]] + [run["id"] for run in rest.expect(0).json()["data"]]
    assert sorted(seen) == sorted([*ids, email])
    by_queue = run_cli("runs", "list", "--json", "--queue", "emails", env=pg_env).expect(0).json()
    assert [run["id"] for run in by_queue["data"]] == [email]
    by_task = run_cli("runs", "list", "--json", "--task", "test.echo", "--status", "queued", env=pg_env)
    assert sorted(run["id"] for run in by_task.expect(0).json()["data"]) == sorted(ids)
    future = run_cli("runs", "list", "--json", "--created-after", "2999-01-01T00:00:00Z", env=pg_env)
    assert future.expect(0).json()["data"] == []
    human = run_cli("runs", "list", "--limit", "1", env=pg_env).expect(0)
    assert "next cursor:" in human.stdout


def test_cancel_and_manual_retry(pg_env: dict[str, str]) -> None:
    later = trigger(pg_env, "test.echo", {"n": 1}, "--delay", "1h")["run"]
    assert later["status"] == "scheduled"
    cancelled = run_cli("runs", "cancel", later["id"], "--reason", "not_needed", "--json", env=pg_env).expect(
        0
    )
    assert cancelled.json()["run"]["status"] == "cancelled"

    broken = trigger(pg_env, "test.broken", {"n": 2})["run"]["id"]
    run_cli("worker", "--mode", "drain", env=pg_env).expect(0)
    failed = show(pg_env, broken)["run"]
    assert failed["status"] == "failed"
    assert failed["failure"]["message"] == "broken on purpose"
    retried = run_cli("runs", "retry", broken, "--json", env=pg_env).expect(0).json()["run"]
    assert retried["source"] == {"type": "manual_retry", "sourceRunId": broken}

    rejected = run_cli("runs", "retry", later["id"], env=pg_env)
    assert_one_clean_error(rejected, contains="error [validation_failed]")


def test_idempotency_reset(pg_env: dict[str, str]) -> None:
    first = trigger(pg_env, "test.email", {"to": "grace@example.com"})
    again = trigger(pg_env, "test.email", {"to": "grace@example.com"})
    assert again["outcome"] == "returned_existing"
    assert again["run"]["id"] == first["run"]["id"]
    run_cli("worker", "--mode", "drain", "--queues", "emails", env=pg_env).expect(0)
    reset = run_cli("idempotency", "reset", "test.email", "email.grace@example.com", "--json", env=pg_env)
    assert reset.expect(0).json()["reset"] is True
    fresh = trigger(pg_env, "test.email", {"to": "grace@example.com"})
    assert fresh["outcome"] == "created"
    assert fresh["run"]["id"] != first["run"]["id"]


def test_traceparent_reaches_the_handler_and_the_worker_logs(pg_env: dict[str, str], tmp_path: Path) -> None:
    run_id = trigger(pg_env, "test.trace_probe", {"marker_dir": str(tmp_path)}, "--traceparent", TRACEPARENT)[
        "run"
    ]["id"]
    drained = run_cli("worker", "--mode", "drain", env={**pg_env, "RUNLANE_LOG_FORMAT": "json"}).expect(0)
    assert json.loads((tmp_path / f"{run_id}.done").read_text()) == {"traceparent": TRACEPARENT}
    attempt_lines = [
        line
        for line in drained.json_lines()
        if line["message"] in ("attempt started", "attempt finished") and line["runlane"]["run_id"] == run_id
    ]
    assert len(attempt_lines) == 2
    assert all(line["runlane"]["traceparent"] == TRACEPARENT for line in attempt_lines)

    bad = run_cli("trigger", "test.trace_probe", "--traceparent", "not-a-traceparent", env=pg_env)
    assert_one_clean_error(bad, contains="is not a W3C traceparent")


def test_a_trigger_in_another_process_wakes_an_idle_worker(pg_env: dict[str, str], tmp_path: Path) -> None:
    """The postgres lane's NOTIFY wakeups: the worker polls only every minute, yet runs it at once."""
    worker = CliProcess("worker", "--poll-interval", "60s", env=pg_env)
    try:
        wait_until(lambda: "worker started" in worker.stderr, timeout=60, what="the worker to start")
        time.sleep(0.5)  # past the first (empty) claim: the worker now idles for 60 s
        triggered_at = time.monotonic()
        run_id = trigger(pg_env, "test.echo", {"marker_dir": str(tmp_path)})["run"]["id"]
        wait_until(lambda: (tmp_path / f"{run_id}.done").exists(), timeout=30, what="the woken worker")
        assert time.monotonic() - triggered_at < 30
        worker.signal(signal.SIGTERM)
        worker.wait(timeout=30).expect(0)
    finally:
        worker.kill()


def test_sigterm_mid_attempt_finishes_it_and_claims_nothing_after(
    pg_env: dict[str, str], tmp_path: Path
) -> None:
    slow = trigger(pg_env, "test.sleepy", {"marker_dir": str(tmp_path), "seconds": 2})["run"]["id"]
    worker = CliProcess(
        "worker", "--concurrency", "2", "--poll-interval", "100ms", "--shutdown-grace", "20s", env=pg_env
    )
    try:
        wait_until(lambda: (tmp_path / f"{slow}.started").exists(), timeout=60, what="the attempt to start")
        signalled_at = time.monotonic()
        worker.signal(signal.SIGTERM)
        late = trigger(pg_env, "test.echo", {"marker_dir": str(tmp_path)})["run"]["id"]
        result = worker.wait(timeout=30).expect(0)
        elapsed = time.monotonic() - signalled_at
    finally:
        worker.kill()
    assert elapsed < 20, elapsed
    assert (tmp_path / f"{slow}.done").exists()
    assert "executed 1 attempt(s)" in result.stdout
    assert "Traceback" not in result.stderr
    assert show(pg_env, slow)["run"]["status"] == "succeeded"
    after = show(pg_env, late)["run"]
    assert after["status"] == "queued"
    assert after["attempts"] == 0
    assert not (tmp_path / f"{late}.done").exists()


def test_second_signal_exits_immediately_with_130(pg_env: dict[str, str], tmp_path: Path) -> None:
    slow = trigger(pg_env, "test.sleepy", {"marker_dir": str(tmp_path), "seconds": 30})["run"]["id"]
    worker = CliProcess("worker", "--poll-interval", "100ms", "--shutdown-grace", "60s", env=pg_env)
    try:
        wait_until(lambda: (tmp_path / f"{slow}.started").exists(), timeout=60, what="the attempt to start")
        worker.signal(signal.SIGTERM)
        wait_until(lambda: "worker stopping" in worker.stderr, timeout=15, what="graceful stop to begin")
        started = time.monotonic()
        worker.signal(signal.SIGTERM)
        result = worker.wait(timeout=15)
        assert time.monotonic() - started < 10
    finally:
        worker.kill()
    assert result.returncode == 130
    assert "second signal" in result.stderr
    assert not (tmp_path / f"{slow}.done").exists()


def test_grace_expiry_releases_a_cooperative_attempt_without_spending_retries(
    pg_env: dict[str, str], tmp_path: Path
) -> None:
    """After the grace the attempt's signal is aborted; the run is released to run again later."""
    slow = trigger(pg_env, "test.patient", {"marker_dir": str(tmp_path), "seconds": 30})["run"]["id"]
    worker = CliProcess("worker", "--poll-interval", "100ms", "--shutdown-grace", "300ms", env=pg_env)
    try:
        wait_until(lambda: (tmp_path / f"{slow}.started").exists(), timeout=60, what="the attempt to start")
        worker.signal(signal.SIGTERM)
        result = worker.wait(timeout=30)
    finally:
        worker.kill()
    result.expect(0)
    run = show(pg_env, slow)
    assert run["run"]["status"] == "released"
    assert run["run"]["failures"] == 0
    assert run["events"][-1]["type"] == "run.released"
    assert run["events"][-1]["reason"] == "worker_shutdown"
    assert not (tmp_path / f"{slow}.done").exists()


def test_attempt_ignoring_the_abort_makes_the_worker_give_up(pg_env: dict[str, str], tmp_path: Path) -> None:
    """``sleepy`` ignores its signal: after grace plus the abort window the worker exits 1."""
    slow = trigger(pg_env, "test.sleepy", {"marker_dir": str(tmp_path), "seconds": 30})["run"]["id"]
    worker = CliProcess("worker", "--poll-interval", "100ms", "--shutdown-grace", "300ms", env=pg_env)
    try:
        wait_until(lambda: (tmp_path / f"{slow}.started").exists(), timeout=60, what="the attempt to start")
        worker.signal(signal.SIGTERM)
        result = worker.wait(timeout=30)
    finally:
        worker.kill()
    assert result.returncode == 1
    assert "attempts still running" in result.stderr
    assert "Traceback" not in result.stderr
    assert show(pg_env, slow)["run"]["status"] == "running"  # its lease expires; tick recovers it


def test_unreachable_database_names_the_problem(pg_cluster: PostgresCluster) -> None:
    env = {
        "RUNLANE_APP": "tests.support.apps.basic:app",
        "RUNLANE_LANE": "postgres",
        "RUNLANE_DATABASE_URL": f"postgresql://runlane@127.0.0.1:{_free_port()}/runlane",
    }
    from tests.support.console_script import clean_env

    result = run_cli("migrate", "--apply", env=clean_env(**env))
    assert_one_clean_error(result, contains="error [configuration_invalid]")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
