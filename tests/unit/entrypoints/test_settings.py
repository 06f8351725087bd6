"""RunlaneSettings: sources, precedence, durations, and one-line errors naming the variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runlane import ErrorCode, RunlaneError
from runlane.entrypoints.settings import RunlaneSettings
from runlane.entrypoints.settings_loading import load_settings, variable_name


def load(environ: dict[str, str] | None = None, **kwargs: object) -> RunlaneSettings:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in (environ or {}).items():
            patch.setenv(key, value)
        return load_settings(env_file=None, **kwargs)  # type: ignore[arg-type]


def error_of(environ: dict[str, str], **kwargs: object) -> str:
    with pytest.raises(RunlaneError) as caught:
        load(environ, **kwargs)
    assert caught.value.code is ErrorCode.CONFIGURATION_INVALID
    assert "\n" not in caught.value.message
    return caught.value.message


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in [key for key in os.environ if key.startswith("RUNLANE_")]:
        monkeypatch.delenv(key)


def test_defaults() -> None:
    settings = load()
    assert settings.lane == "local"
    assert settings.environment == "default"
    assert settings.app is None
    assert settings.worker.concurrency == 1
    assert settings.worker.lease_duration == "30s"
    assert settings.worker.shutdown_grace == "30s"
    assert settings.worker.gc_tuning is True
    assert settings.tick.interval == "1m"
    assert settings.log.format == "text"


def test_environment_variables_fill_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLANE_LANE", "postgres")
    monkeypatch.setenv("RUNLANE_DATABASE_URL", "postgresql://u:secret@127.0.0.1/db")
    monkeypatch.setenv("RUNLANE_DATABASE_SCHEMA", "jobs")
    monkeypatch.setenv("RUNLANE_WORKER_QUEUES", "emails, reports")
    monkeypatch.setenv("RUNLANE_WORKER_CONCURRENCY", "8")
    monkeypatch.setenv("RUNLANE_WORKER_GC_TUNING", "false")
    monkeypatch.setenv("RUNLANE_LOG_LEVEL", "debug")
    settings = load_settings(env_file=None)
    assert settings.lane == "postgres"
    assert settings.database.url is not None
    assert settings.database.url.get_secret_value() == "postgresql://u:secret@127.0.0.1/db"
    assert settings.database.schema_name == "jobs"
    assert settings.worker.queues == ("emails", "reports")
    assert settings.worker.concurrency == 8
    assert settings.worker.gc_tuning is False
    assert settings.log.level == "DEBUG"
    assert "secret" not in json.dumps(settings.redacted())


def test_precedence_override_env_dotenv_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "runlane.toml"
    config.write_text(
        'environment = "toml"\nlane = "postgres"\n[worker]\nconcurrency = 2\npoll_interval = "5s"\n'
    )
    dotenv = tmp_path / ".env"
    dotenv.write_text("RUNLANE_ENVIRONMENT=dotenv\nRUNLANE_WORKER_CONCURRENCY=3\n")
    monkeypatch.setenv("RUNLANE_ENVIRONMENT", "env")
    settings = load_settings(config_file=config, env_file=dotenv, app="pkg.jobs:app")
    assert settings.environment == "env"  # env beats .env and TOML
    assert settings.worker.concurrency == 3  # .env beats TOML
    assert settings.worker.poll_interval == "5s"  # TOML beats defaults
    assert settings.lane == "postgres"
    assert settings.app == "pkg.jobs:app"  # explicit override (CLI flag)
    assert settings.config == str(config)


def test_config_path_from_runlane_config(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('environment = "from-file"\n')
    assert load({"RUNLANE_CONFIG": str(config)}).environment == "from-file"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"RUNLANE_LANE": "redis"}, "RUNLANE_LANE: must be one of local, postgres, postgres-sqs"),
        ({"RUNLANE_WORKER_CONCURRENCY": "0"}, "RUNLANE_WORKER_CONCURRENCY: must be at least 1 (got '0')"),
        ({"RUNLANE_WORKER_CONCURRENCY": "x"}, "RUNLANE_WORKER_CONCURRENCY: must be an integer (got 'x')"),
        ({"RUNLANE_TICK_INTERVAL": "1 minute"}, "RUNLANE_TICK_INTERVAL: must be a duration like 500ms"),
        ({"RUNLANE_WORKER_SHUTDOWN_GRACE": "0s"}, "RUNLANE_WORKER_SHUTDOWN_GRACE: must be a duration"),
        ({"RUNLANE_LOG_FORMAT": "xml"}, "RUNLANE_LOG_FORMAT: must be one of text, json (got 'xml')"),
        ({"RUNLANE_APP": "no-colon"}, "RUNLANE_APP: must look like package.module:attribute"),
        ({"RUNLANE_ENVIRONMENT": "a:b"}, "RUNLANE_ENVIRONMENT: environment 'a:b' must not contain ':'"),
        ({"RUNLANE_SQS_QUEUES": "[1"}, "RUNLANE_SQS_QUEUES: must be JSON"),
        ({"RUNLANE_SQS_WAIT_TIME_SECONDS": "21"}, "RUNLANE_SQS_WAIT_TIME_SECONDS: must be at most 20"),
        ({"RUNLANE_WORKER_TYPO": "1"}, "RUNLANE_WORKER_TYPO: is not a runlane setting"),
        ({"RUNLANE_WORKER_GC_TUNING": "maybe"}, "RUNLANE_WORKER_GC_TUNING: must be true or false"),
        (
            {"RUNLANE_WORKER_LEASE_DURATION": "10s", "RUNLANE_WORKER_HEARTBEAT_INTERVAL": "10s"},
            "RUNLANE_WORKER_HEARTBEAT_INTERVAL: must be shorter than RUNLANE_WORKER_LEASE_DURATION",
        ),
        (
            {"RUNLANE_WORKER_QUEUES": "a", "RUNLANE_WORKER_PROFILE": "p"},
            "RUNLANE_WORKER_QUEUES and RUNLANE_WORKER_PROFILE are mutually exclusive",
        ),
        (
            {"RUNLANE_SQS_QUEUES": '{"default": {"url": "https://x/q", "name": "q"}}'},
            "RUNLANE_SQS_QUEUES (default): needs exactly one of url or name",
        ),
        (
            {"RUNLANE_SQS_SIGNING_KEY": '{"algorithm": "hmac-sha256", "key_id": "k"}'},
            "RUNLANE_SQS_SIGNING_KEY: an hmac-sha256 key needs a secret",
        ),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], expected: str) -> None:
    assert expected in error_of(environ)


def test_several_problems_are_reported_on_one_line() -> None:
    message = error_of({"RUNLANE_LANE": "redis", "RUNLANE_WORKER_CONCURRENCY": "0"})
    assert "RUNLANE_LANE:" in message
    assert "RUNLANE_WORKER_CONCURRENCY:" in message


def test_secrets_are_never_echoed() -> None:
    message = error_of(
        {"RUNLANE_SQS_SIGNING_KEY": '{"algorithm": "rot13", "key_id": "k", "secret": "hunter2hunter2"}'}
    )
    assert "RUNLANE_SQS_SIGNING_KEY (algorithm): must be one of hmac-sha256, ed25519" in message
    assert "hunter2" not in message


def test_missing_config_file_and_bad_toml(tmp_path: Path) -> None:
    assert "--config: config file" in error_of({}, config_file=tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('lane = "unterminated\n')
    assert "RUNLANE_CONFIG:" in error_of({"RUNLANE_CONFIG": str(bad)})
    typo = tmp_path / "typo.toml"
    typo.write_text('lanes = "local"\n')
    assert "RUNLANE_LANES: is not a runlane setting" in error_of({"RUNLANE_CONFIG": str(typo)})


def test_sqs_queue_map_accepts_urls_names_and_fifo_options() -> None:
    settings = load(
        {
            "RUNLANE_SQS_QUEUES": json.dumps(
                {
                    "default": "https://sqs.us-east-1.amazonaws.com/123456789012/default",
                    "emails": "emails.fifo",
                    "reports": {"name": "reports", "owner_account_id": "123456789012"},
                    "ordered": {"url": "https://sqs.local/o.fifo", "fifo": {"message_group": "queue"}},
                }
            )
        }
    )
    queues = settings.sqs.queues
    assert queues["default"].url is not None
    assert queues["default"].fifo_options is None
    fifo = queues["emails"].fifo_options
    assert queues["emails"].name == "emails.fifo"
    assert fifo is not None
    assert fifo.message_group == "run"
    assert queues["reports"].owner_account_id == "123456789012"
    ordered = queues["ordered"].fifo_options
    assert ordered is not None
    assert ordered.message_group == "queue"
    assert ordered.deduplication == "outbox"


def test_variable_names() -> None:
    assert variable_name(("lane",)) == ("RUNLANE_LANE", "")
    assert variable_name(("worker", "concurrency")) == ("RUNLANE_WORKER_CONCURRENCY", "")
    assert variable_name(("sqs", "queues", "emails", "url")) == ("RUNLANE_SQS_QUEUES", "emails.url")


def test_a_shared_dotenv_file_may_hold_other_tools_variables(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("DATABASE_PASSWORD=x\nCOMPOSE_PROJECT_NAME=app\nRUNLANE_ENVIRONMENT=dot\n")
    assert load_settings(env_file=dotenv).environment == "dot"
    dotenv.write_text("RUNLANE_WORKER_CONCURENCY=2\n")  # a typo inside a known group still fails
    with pytest.raises(RunlaneError, match="RUNLANE_WORKER_CONCURENCY: is not a runlane setting"):
        load_settings(env_file=dotenv)
