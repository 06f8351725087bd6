"""Build the lane the settings select; shared by the container and the plain ``bootstrap()``.

Postgres, SQS and boto3 are imported inside the factories, so the local lane (``runlane demo``,
tests) never loads them.
"""

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from runlane.application.app_definition import RunlaneApp
from runlane.application.runtime import Runlane
from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode
from runlane.entrypoints.settings import RunlaneSettings, SigningKeySettings, SqsQueueSettings
from runlane.infrastructure.memory import create_local_lane
from runlane.ports.lane import Lane

if TYPE_CHECKING:
    from runlane.infrastructure.sqs import SqsQueueBinding, WakeupKey, WakeupSigner, WakeupVerifier


def _invalid(message: str) -> RunlaneError:
    return RunlaneError(ErrorCode.CONFIGURATION_INVALID, message)


def _prefixed(variable: str, error: RunlaneError) -> RunlaneError:
    """Name the setting an adapter's configuration error came from (once)."""
    if error.message.startswith("RUNLANE_"):
        return error
    return RunlaneError(error.code, f"{variable}: {error.message}", meta=error.meta)


def local_lane() -> Lane:
    return create_local_lane()


def database_url(settings: RunlaneSettings) -> str:
    if settings.database.url is None:
        raise _invalid(f"RUNLANE_DATABASE_URL: required when RUNLANE_LANE is {settings.lane}")
    return settings.database.url.get_secret_value()


def _database_error(exc: RunlaneError) -> RunlaneError:
    schema_problem = (exc.meta or {}).get("field") == "schema"
    return _prefixed("RUNLANE_DATABASE_SCHEMA" if schema_problem else "RUNLANE_DATABASE_URL", exc)


def postgres_lane(settings: RunlaneSettings) -> Lane:
    """``create_postgres_lane``: Postgres storage with LISTEN/NOTIFY wakeups (no broker).

    Workers on this lane listen for wakeups and still poll storage, so a lost notification costs
    latency, never a run.
    """
    from runlane.infrastructure.lanes import create_postgres_lane

    url = database_url(settings)
    try:
        return create_postgres_lane(connection_string=url, schema=settings.database.schema_name)
    except RunlaneError as exc:
        raise _database_error(exc) from None


def sqs_bindings(settings: RunlaneSettings, app: RunlaneApp) -> list["SqsQueueBinding"]:
    from runlane.infrastructure.sqs import SqsFifoOptions, sqs_queue

    mapping = settings.sqs.queues
    if not mapping:
        raise _invalid("RUNLANE_SQS_QUEUES: required when RUNLANE_LANE is postgres-sqs")
    registered = {queue.name: queue for queue in app.queues}
    unknown = sorted(set(mapping) - set(registered))
    if unknown:
        raise _invalid(
            f"RUNLANE_SQS_QUEUES: {', '.join(unknown)} not registered on the app "
            f"(registered: {', '.join(sorted(registered))})"
        )
    unmapped = sorted(set(registered) - set(mapping))
    if unmapped:
        raise _invalid(f"RUNLANE_SQS_QUEUES: no SQS queue for app queue(s) {', '.join(unmapped)}")
    bindings = []
    for name, entry in mapping.items():
        fifo = entry.fifo_options
        try:
            bindings.append(
                sqs_queue(
                    registered[name],
                    queue_url=entry.url,
                    queue_name=entry.name,
                    queue_owner_aws_account_id=entry.owner_account_id,
                    fifo=None
                    if fifo is None
                    else SqsFifoOptions(message_group=fifo.message_group, deduplication=fifo.deduplication),  # type: ignore[arg-type]
                )
            )
        except RunlaneError as exc:
            raise _prefixed("RUNLANE_SQS_QUEUES", exc) from None
    return bindings


def _wakeup_key(variable: str, key: SigningKeySettings) -> "WakeupKey":
    from runlane.infrastructure.sqs import Ed25519Key, HmacSha256Key

    try:
        if key.algorithm == "hmac-sha256":
            assert key.secret is not None  # checked by the settings model
            return HmacSha256Key(key_id=key.key_id, secret=key.secret.get_secret_value().encode("utf-8"))
        return Ed25519Key(
            key_id=key.key_id,
            private_key=None if key.private_key is None else key.private_key.get_secret_value(),
            public_key=key.public_key,
        )
    except RunlaneError as exc:
        raise _prefixed(variable, exc) from None


def wakeup_signer(settings: RunlaneSettings) -> "WakeupSigner | None":
    """Producers sign when a key with signing material is configured (HMAC secret, Ed25519 private)."""
    from runlane.infrastructure.sqs import WakeupSigner

    config = settings.sqs.signing_key
    if config is None or (config.algorithm == "ed25519" and config.private_key is None):
        return None
    return WakeupSigner(key=_wakeup_key("RUNLANE_SQS_SIGNING_KEY", config), ttl=settings.sqs.signature_ttl)


def wakeup_verifier(settings: RunlaneSettings) -> "WakeupVerifier | None":
    """Consumers verify when a signing key is configured; the fallback key allows rotation."""
    from runlane.infrastructure.sqs import WakeupVerifier

    config = settings.sqs.signing_key
    if config is None:
        return None
    fallback = settings.sqs.fallback_signing_key
    try:
        return WakeupVerifier(
            key=_wakeup_key("RUNLANE_SQS_SIGNING_KEY", config),
            fallback_key=None
            if fallback is None
            else _wakeup_key("RUNLANE_SQS_FALLBACK_SIGNING_KEY", fallback),
        )
    except RunlaneError as exc:
        raise _prefixed("RUNLANE_SQS_SIGNING_KEY", exc) from None


def boto3_session(settings: RunlaneSettings) -> Iterator[Any]:
    """A ``Resource`` generator: one boto3 session per process (credentials from the usual chain)."""
    import boto3

    yield boto3.session.Session(region_name=settings.sqs.region)


def sqs_client(session: Any, settings: RunlaneSettings) -> Iterator[Any]:
    """A ``Resource`` generator: the SQS client, closed (its HTTP pool released) on shutdown."""
    client = session.client("sqs", endpoint_url=settings.sqs.endpoint_url, region_name=settings.sqs.region)
    try:
        yield client
    finally:
        client.close()


def postgres_sqs_lane(settings: RunlaneSettings, app: RunlaneApp, client: Any) -> Lane:
    """``create_postgres_sqs_lane``: Postgres storage + SQS wakeups, one binding per app queue."""
    from runlane.infrastructure.lanes import create_postgres_sqs_lane

    bindings = sqs_bindings(settings, app)
    signer = wakeup_signer(settings)
    url = database_url(settings)
    try:
        return create_postgres_sqs_lane(
            postgres={"connection_string": url, "schema": settings.database.schema_name},
            sqs={"client": client, "queues": bindings, "signer": signer},
        )
    except RunlaneError as exc:  # the SQS parts were checked above: what is left is the database
        raise _database_error(exc) from None


def queue_settings(settings: RunlaneSettings, name: str) -> SqsQueueSettings:
    entry = settings.sqs.queues.get(name)
    if entry is None:
        raise _invalid(
            f"RUNLANE_SQS_QUEUES: no SQS queue for {name!r} "
            f"(mapped: {', '.join(sorted(settings.sqs.queues)) or 'none'})"
        )
    return entry


def build_runtime(app: RunlaneApp, lane: Lane, settings: RunlaneSettings) -> Runlane:
    return app.build_runtime(lane, environment=settings.environment, worker_id=settings.worker.id)
