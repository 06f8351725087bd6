"""Payload schemas: pydantic models, objects with ``validate``, or plain validator callables.

Duck-typed so the application layer never imports pydantic: a class with ``model_validate`` is
treated as a pydantic model (the handler gets the model; storage gets ``model_dump(mode="json")``).
"""

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runlane.domain.errors import RunlaneError
from runlane.domain.json_values import JsonValue, ensure_json_value
from runlane.domain.vocabulary import ErrorCode

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
# What ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` builds on every call.
_SIZE_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class ValidatedPayload:
    value: Any  # what the handler receives
    stored: JsonValue  # what storage persists


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


class PayloadSchema:
    """Normalises every accepted schema shape to one ``validate`` returning both representations."""

    def __init__(self, schema: object) -> None:
        self._schema = schema
        self._model = isinstance(schema, type) and callable(getattr(schema, "model_validate", None))
        plain = schema is not None and not self._model and not callable(schema)
        if plain and not callable(getattr(schema, "validate", None)):
            raise RunlaneError(
                ErrorCode.CONFIGURATION_INVALID,
                "schema must be a pydantic model class, an object with validate(value), or a callable.",
            )

    def validate(
        self, value: object, *, task_id: str, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    ) -> ValidatedPayload:
        """Validate input from a producer (dict or model instance) before a run is created."""
        validated = self._run_schema(value, task_id)
        stored = self._stored(value, validated)
        size = len(_SIZE_ENCODER.encode(stored).encode("utf-8"))
        if size > max_bytes:
            raise RunlaneError(
                ErrorCode.VALIDATION_FAILED,
                f"Payload for task {task_id!r} is {size} bytes; the limit is {max_bytes} bytes.",
                meta={"taskId": task_id, "bytes": size, "limit": max_bytes},
            )
        return ValidatedPayload(value=validated, stored=stored)

    def revalidate(self, stored: JsonValue, *, task_id: str) -> Any:
        """Validate the persisted JSON again before an attempt (the schema may have changed).

        The same checks as ``validate`` without a size limit, so the stored form is only checked
        (its size is never computed).
        """
        validated = self._run_schema(stored, task_id)
        self._stored(stored, validated)
        return validated

    def _run_schema(self, value: object, task_id: str) -> Any:
        """What the handler receives; a schema's failure becomes ``validation_failed``."""
        schema = self._schema
        try:
            if schema is None:
                return value
            if self._model:
                model: Any = schema
                return value if isinstance(value, model) else model.model_validate(value)
            if callable(getattr(schema, "validate", None)) and not callable(schema):
                return schema.validate(value)  # type: ignore[attr-defined]
            fn: Callable[[object], Any] = schema  # type: ignore[assignment]
            return fn(value)
        except RunlaneError as exc:
            raise RunlaneError(
                ErrorCode.VALIDATION_FAILED,
                f"Payload for task {task_id!r} is invalid: {exc.message}",
                meta=exc.meta,
            ) from exc
        except Exception as exc:
            raise RunlaneError(
                ErrorCode.VALIDATION_FAILED,
                f"Payload for task {task_id!r} is invalid: {_describe(exc)}",
                meta={"taskId": task_id},
            ) from exc

    def _stored(self, value: object, validated: Any) -> JsonValue:
        """What storage persists: the model's JSON dump, else the validated value when it is plain
        JSON, else the producer's JSON (the validator runs again before each attempt)."""
        if self._model:
            return ensure_json_value(validated.model_dump(mode="json"), field="payload")
        with contextlib.suppress(RunlaneError):
            return ensure_json_value(validated, field="payload")
        return ensure_json_value(value, field="payload")
