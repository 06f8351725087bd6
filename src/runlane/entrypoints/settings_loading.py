"""``load_settings``: build ``RunlaneSettings`` or fail with one line naming the variable.

Operators see ``RUNLANE_LANE: must be one of local, postgres, postgres-sqs (got 'redis')``, never a
pydantic traceback; the error is a ``RunlaneError(configuration_invalid)``.
"""

import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict, SettingsError

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode
from runlane.entrypoints.settings import ENV_PREFIX, RunlaneSettings

CONFIG_VARIABLE = f"{ENV_PREFIX}CONFIG"
_GROUPS = frozenset({"database", "sqs", "worker", "tick", "log"})
# Never echo these values back in an error message.
_SECRET_PATHS = (("database", "url"), ("sqs", "signing_key"), ("sqs", "fallback_signing_key"))
# Structured values given as one environment variable are JSON.
JSON_VARIABLES = (
    f"{ENV_PREFIX}SQS_QUEUES",
    f"{ENV_PREFIX}SQS_SIGNING_KEY",
    f"{ENV_PREFIX}SQS_FALLBACK_SIGNING_KEY",
)


def config_error(message: str) -> RunlaneError:
    return RunlaneError(ErrorCode.CONFIGURATION_INVALID, message)


def load_settings(
    *,
    config_file: str | os.PathLike[str] | None = None,
    env_file: str | os.PathLike[str] | None = ".env",
    **overrides: Any,
) -> RunlaneSettings:
    """Read every source; ``overrides`` (CLI flags) win. Unset overrides (``None``) are ignored."""
    env = os.environ
    path = _config_path(config_file, env, env_file)
    init = {key: value for key, value in overrides.items() if value is not None}
    settings_cls: type[RunlaneSettings] = RunlaneSettings
    if path is not None:
        init.setdefault("config", str(path))
        settings_cls = _with_toml(path)
    try:
        return settings_cls(_env_file=env_file, **init)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise config_error(describe_validation_error(exc)) from None
    except SettingsError as exc:
        raise config_error(_describe_json_error(env, env_file, exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise config_error(f"{CONFIG_VARIABLE}: {path} is not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise config_error(f"settings could not be read: {one_line(str(exc))}") from None


def _config_path(
    explicit: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    env_file: str | os.PathLike[str] | None,
) -> Path | None:
    label = "--config"
    raw: str | os.PathLike[str] | None = explicit
    if raw is None:
        label = CONFIG_VARIABLE
        raw = env.get(CONFIG_VARIABLE)
    if raw is None and env_file is not None and Path(env_file).is_file():
        raw = dotenv_values(env_file).get(CONFIG_VARIABLE)
    if raw is None or raw == "":
        return None
    path = Path(raw)
    if not path.is_file():
        raise config_error(f"{label}: config file {str(path)!r} does not exist")
    return path


def _describe_json_error(
    env: Mapping[str, str], env_file: str | os.PathLike[str] | None, exc: SettingsError
) -> str:
    values: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update(dotenv_values(env_file))
    values.update(env)
    for name in JSON_VARIABLES:
        raw = values.get(name)
        if raw is None:
            continue
        try:
            json.loads(raw)
        except ValueError as error:
            return f"{name}: must be JSON ({error})"
    return f"settings could not be parsed: {one_line(str(exc))}"


def _with_toml(path: Path) -> type[RunlaneSettings]:
    class ConfiguredSettings(RunlaneSettings):
        model_config = SettingsConfigDict(toml_file=path)

    return ConfiguredSettings


def one_line(text: str) -> str:
    return " ".join(text.split())


def variable_name(loc: Sequence[object]) -> tuple[str, str]:
    """``('worker', 'concurrency')`` -> ``('RUNLANE_WORKER_CONCURRENCY', '')``; deeper parts as detail."""
    parts = [str(part) for part in loc]
    if not parts:
        return "", ""
    if parts[0] in _GROUPS and len(parts) >= 2:
        name = f"{ENV_PREFIX}{parts[0]}_{parts[1]}".upper()
        return name, ".".join(parts[2:])
    return f"{ENV_PREFIX}{parts[0]}".upper(), ".".join(parts[1:])


def _explain(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace(" or ", ", ").replace("'", "")
        return f"must be one of {expected}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"must be at most {ctx.get('le', ctx.get('lt'))}"
    if kind == "int_parsing":
        return "must be an integer"
    if kind == "bool_parsing":
        return "must be true or false"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a runlane setting"
    if kind == "value_error":
        return str(error.get("msg", "")).removeprefix("Value error, ")
    message = str(error.get("msg", "is invalid"))
    return message[:1].lower() + message[1:]


def _is_secret(loc: Sequence[object]) -> bool:
    return any(tuple(loc[: len(path)]) == path for path in _SECRET_PATHS)


def describe_validation_error(exc: ValidationError) -> str:
    """All problems on one line, each as ``VARIABLE: what is wrong (got value)``."""
    lines: list[str] = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        # Union members repeat the same location with "str" / model alternatives; keep the first.
        name, detail = variable_name(_strip_union_tags(loc))
        explanation = one_line(_explain(error))
        if explanation.startswith(ENV_PREFIX):
            line = explanation  # a cross-field check that names its variables itself
        else:
            where = f"{name} ({detail})" if detail else name
            line = f"{where}: {explanation}" if where else explanation
            value = error.get("input")
            if (
                error.get("type") not in ("missing", "value_error")
                and isinstance(value, str | int | float | bool)
                and not _is_secret(loc)
            ):
                line += f" (got {value!r})"
        if line not in lines:
            lines.append(line)
    return "; ".join(lines)


def _strip_union_tags(loc: tuple[object, ...]) -> tuple[object, ...]:
    tags = {"str", "bool", "SqsFifoSettings", "function-after[_one_target(), SqsQueueSettings]"}
    return tuple(part for part in loc if not (isinstance(part, str) and (part in tags or "[" in part)))
