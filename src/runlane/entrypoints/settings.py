"""``RunlaneSettings``: what a deployment changes without changing code.

Sources, strongest first: explicit overrides (CLI flags), ``RUNLANE_*`` environment variables, a
``.env`` file, a TOML file (``--config`` or ``RUNLANE_CONFIG``), then defaults. Groups map to
environment variables with one underscore: ``[worker] concurrency`` is ``RUNLANE_WORKER_CONCURRENCY``.
Durations use runlane's own grammar (``500ms``, ``30s``, ``5m``, ``1h``, ``7d``). Loading errors are
translated by :mod:`runlane.entrypoints.settings_loading` into one line naming the variable.
"""

import re
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from runlane.domain.durations import parse_duration
from runlane.domain.errors import RunlaneError
from runlane.domain.ids import IdKind, as_id

ENV_PREFIX = "RUNLANE_"
LaneKind = Literal["local", "postgres", "postgres-sqs"]
LANE_KINDS: tuple[str, ...] = ("local", "postgres", "postgres-sqs")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]
_APP_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _duration(value: str) -> str:
    try:
        parse_duration(value)
    except RunlaneError as exc:
        raise ValueError(f"must be a duration like 500ms, 30s, 5m, 1h or 7d (got {value!r})") from exc
    return value


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


Duration = Annotated[str, AfterValidator(_duration)]
NameList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)]


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DatabaseSettings(_Group):
    url: SecretStr | None = None
    schema_name: str | None = Field(default=None, alias="schema")


class SqsFifoSettings(_Group):
    message_group: Literal["run", "queue"] = "run"
    deduplication: Literal["outbox", "content_based"] = "outbox"


class SqsQueueSettings(_Group):
    """One logical queue's SQS queue: exactly one of ``url`` or ``name``; FIFO options for ``.fifo``."""

    url: str | None = None
    name: str | None = None
    owner_account_id: str | None = None
    fifo: SqsFifoSettings | bool = False

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.url is None) == (self.name is None):
            raise ValueError("needs exactly one of url or name")
        return self

    @property
    def fifo_options(self) -> SqsFifoSettings | None:
        if self.fifo is True:
            return SqsFifoSettings()
        return self.fifo or None


def _queue_entry(value: object) -> object:
    # A bare string is a queue URL (http/https) or a queue name.
    if isinstance(value, str):
        target = "url" if value.startswith(("http://", "https://")) else "name"
        fifo = value.endswith(".fifo")
        return {target: value, "fifo": fifo}
    return value


QueueEntry = Annotated[SqsQueueSettings, BeforeValidator(_queue_entry)]


class SigningKeySettings(_Group):
    """A wakeup signing key: HMAC needs ``secret``; Ed25519 ``private_key`` signs, ``public_key`` verifies."""

    algorithm: Literal["hmac-sha256", "ed25519"]
    key_id: str
    secret: SecretStr | None = None
    private_key: SecretStr | None = None
    public_key: str | None = None

    @model_validator(mode="after")
    def _material(self) -> Self:
        if self.algorithm == "hmac-sha256" and self.secret is None:
            raise ValueError("an hmac-sha256 key needs a secret")
        if self.algorithm == "ed25519" and self.private_key is None and self.public_key is None:
            raise ValueError("an ed25519 key needs a private_key (producers) or a public_key (consumers)")
        return self


class SqsSettings(_Group):
    queues: dict[str, QueueEntry] = Field(default_factory=dict)
    region: str | None = None
    endpoint_url: str | None = None
    signing_key: SigningKeySettings | None = None
    fallback_signing_key: SigningKeySettings | None = None
    signature_ttl: Duration = "4d"
    wait_time_seconds: int = Field(default=20, ge=0, le=20)
    max_messages: int = Field(default=10, ge=1, le=10)
    visibility_timeout_seconds: int | None = Field(default=None, ge=0, le=43_200)
    consumer_concurrency: int = Field(default=1, ge=1, le=10)
    # The Lambda event source is a FIFO queue: stop a batch at its first failure.
    lambda_fifo: bool = False


class WorkerSettings(_Group):
    queues: NameList = ()
    profile: str | None = None
    concurrency: int = Field(default=1, ge=1, le=1000)
    lease_duration: Duration = "30s"
    heartbeat_interval: Duration | None = None
    poll_interval: Duration = "1s"
    shutdown_grace: Duration = "30s"
    max_attempt_duration: Duration | None = None
    id: str | None = None
    # entrypoints.gc_tuning: freeze the startup heap, fewer young collections.
    gc_tuning: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.queues and self.profile:
            raise ValueError("RUNLANE_WORKER_QUEUES and RUNLANE_WORKER_PROFILE are mutually exclusive")
        if self.heartbeat_interval is not None:
            beat = parse_duration(self.heartbeat_interval).milliseconds
            if beat >= parse_duration(self.lease_duration).milliseconds:
                raise ValueError(
                    "RUNLANE_WORKER_HEARTBEAT_INTERVAL: must be shorter than RUNLANE_WORKER_LEASE_DURATION "
                    f"({self.heartbeat_interval} >= {self.lease_duration})"
                )
        if self.id is not None:
            try:
                as_id(IdKind.WORKER, self.id)
            except RunlaneError as exc:
                raise ValueError(f"RUNLANE_WORKER_ID: {exc.message}") from exc
        return self


class TickSettings(_Group):
    interval: Duration = "1m"
    limit: int = Field(default=100, ge=1, le=10_000)


class LogSettings(_Group):
    level: Annotated[LogLevel, BeforeValidator(_upper)] = "INFO"
    format: LogFormat = "text"


def _environment_name(value: str) -> str:
    try:
        as_id(IdKind.ENVIRONMENT, value)
    except RunlaneError as exc:
        raise ValueError(exc.message) from exc
    return value


def _app_reference(value: str | None) -> str | None:
    if value is not None and _APP_REFERENCE.match(value) is None:
        raise ValueError(f"must look like package.module:attribute (got {value!r})")
    return value


class _KnownKeysOnly(PydanticBaseSettingsSource):
    """A ``.env`` file is often shared with other tools: ignore its non-runlane variables."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._inner = inner

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        known = set(self.settings_cls.model_fields)
        return {key: value for key, value in self._inner().items() if key in known}


class RunlaneSettings(BaseSettings):
    """Every setting of the CLI, the worker and the Lambda handler (build with ``load_settings``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
        populate_by_name=True,
    )

    environment: Annotated[str, AfterValidator(_environment_name)] = "default"
    lane: LaneKind = "local"
    app: Annotated[str | None, AfterValidator(_app_reference)] = None
    # The TOML file this configuration came from (``RUNLANE_CONFIG``); read before the others.
    config: str | None = None
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    sqs: SqsSettings = Field(default_factory=SqsSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    tick: TickSettings = Field(default_factory=TickSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _KnownKeysOnly(settings_cls, dotenv_settings),
            TomlConfigSettingsSource(settings_cls),
        )

    def redacted(self) -> dict[str, Any]:
        """The settings as plain data with secrets masked (for ``config.from_dict`` and display)."""
        return self.model_dump(mode="json", by_alias=True)
