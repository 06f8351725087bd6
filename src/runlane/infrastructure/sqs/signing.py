"""Opt-in signed wakeups: producers sign, consumers verify before any storage read.

The signature travels in SQS message attributes, never in the body, so a signed body stays
byte-identical to the unsigned ``runlane.wakeup`` envelope. What is signed is the algorithm, key id,
expiry and the exact UTF-8 body bytes, so none of them can be swapped independently.

Two algorithms: HMAC-SHA256 with a shared secret (both sides hold it), and Ed25519, where the
producer holds the private key and consumers only the public key. A consumer accepts a primary and a
fallback key so keys can be rotated without dropping wakeups in flight.
"""

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from runlane.domain.durations import DurationInput, to_duration
from runlane.domain.errors import RunlaneError, configuration_invalid
from runlane.domain.timestamps import from_wire_time, to_wire_time
from runlane.domain.vocabulary import ErrorCode
from runlane.ports.clock import SYSTEM_CLOCK, Clock

SIGNATURE_ATTRIBUTE = "runlane-signature"
ALGORITHM_ATTRIBUTE = "runlane-signature-alg"
KEY_ID_ATTRIBUTE = "runlane-signature-kid"
EXPIRES_ATTRIBUTE = "runlane-signature-expires"
SIGNATURE_ATTRIBUTES = (SIGNATURE_ATTRIBUTE, ALGORITHM_ATTRIBUTE, KEY_ID_ATTRIBUTE, EXPIRES_ATTRIBUTE)

# Four days: SQS's default message retention, so a backlog does not expire inside the queue.
DEFAULT_SIGNATURE_TTL = "4d"
MIN_HMAC_SECRET_BYTES = 32
_SIGNING_CONTEXT = b"runlane.wakeup.signature.v1"
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_WIRE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

Ed25519KeyMaterial = bytes | str | Ed25519PrivateKey | Ed25519PublicKey


class WakeupSignatureAlgorithm(StrEnum):
    HMAC_SHA256 = "hmac-sha256"
    ED25519 = "ed25519"


class SignatureRejection(StrEnum):
    """``meta.reason`` of a rejected wakeup, for dashboards and alerts."""

    MISSING = "signature_missing"
    UNSUPPORTED_ALGORITHM = "algorithm_unsupported"
    UNKNOWN_KEY = "key_unknown"
    EXPIRED = "signature_expired"
    INVALID = "signature_invalid"


def _check_key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or _KEY_ID.match(key_id) is None:
        raise configuration_invalid("Wakeup signing key_id must be 1..128 characters from [A-Za-z0-9._-].")
    return key_id


@dataclass(frozen=True, slots=True, kw_only=True)
class HmacSha256Key:
    """A shared secret (at least 32 bytes); producer and consumers hold the same one."""

    key_id: str
    secret: bytes

    def __post_init__(self) -> None:
        _check_key_id(self.key_id)
        secret: object = self.secret
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
            object.__setattr__(self, "secret", secret)
        if not isinstance(secret, bytes) or len(secret) < MIN_HMAC_SECRET_BYTES:
            raise configuration_invalid(
                f"Wakeup HMAC secret must be at least {MIN_HMAC_SECRET_BYTES} bytes.", keyId=self.key_id
            )

    def __repr__(self) -> str:  # never print the secret
        return f"HmacSha256Key(key_id={self.key_id!r})"

    @property
    def algorithm(self) -> WakeupSignatureAlgorithm:
        return WakeupSignatureAlgorithm.HMAC_SHA256


def _load_private(material: Ed25519KeyMaterial, key_id: str) -> Ed25519PrivateKey:
    if isinstance(material, Ed25519PrivateKey):
        return material
    try:
        if isinstance(material, bytes) and len(material) == 32:
            return Ed25519PrivateKey.from_private_bytes(material)
        if isinstance(material, str | bytes):
            data = material.encode("ascii") if isinstance(material, str) else material
            loaded = serialization.load_pem_private_key(data, password=None)
            if isinstance(loaded, Ed25519PrivateKey):
                return loaded
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise configuration_invalid("Ed25519 private key could not be loaded.", keyId=key_id) from exc
    raise configuration_invalid(
        "Ed25519 private key must be 32 raw bytes, PEM text or an Ed25519PrivateKey.", keyId=key_id
    )


def _load_public(material: Ed25519KeyMaterial, key_id: str) -> Ed25519PublicKey:
    if isinstance(material, Ed25519PublicKey):
        return material
    try:
        if isinstance(material, bytes) and len(material) == 32:
            return Ed25519PublicKey.from_public_bytes(material)
        if isinstance(material, str | bytes):
            data = material.encode("ascii") if isinstance(material, str) else material
            loaded = serialization.load_pem_public_key(data)
            if isinstance(loaded, Ed25519PublicKey):
                return loaded
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise configuration_invalid("Ed25519 public key could not be loaded.", keyId=key_id) from exc
    raise configuration_invalid(
        "Ed25519 public key must be 32 raw bytes, PEM text or an Ed25519PublicKey.", keyId=key_id
    )


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ed25519Key:
    """Ed25519 key material: producers need ``private_key``, consumers need ``public_key``.

    Each side is loaded eagerly so bad material fails at construction. Giving both lets one process
    sign and verify (tests, local simulation); they must then belong together.
    """

    key_id: str
    private_key: Ed25519KeyMaterial | None = None
    public_key: Ed25519KeyMaterial | None = None

    def __post_init__(self) -> None:
        _check_key_id(self.key_id)
        if self.private_key is None and self.public_key is None:
            raise configuration_invalid(
                "Ed25519 wakeup key needs a private_key or a public_key.", keyId=self.key_id
            )
        private = None if self.private_key is None else _load_private(self.private_key, self.key_id)
        public = None if self.public_key is None else _load_public(self.public_key, self.key_id)
        if (
            private is not None
            and public is not None
            and _raw_public(private.public_key()) != _raw_public(public)
        ):
            raise configuration_invalid("Ed25519 private_key and public_key do not match.", keyId=self.key_id)
        object.__setattr__(self, "private_key", private)
        object.__setattr__(self, "public_key", public)

    def __repr__(self) -> str:
        return (
            f"Ed25519Key(key_id={self.key_id!r}, private_key={'set' if self.private_key else None}, "
            f"public_key={'set' if self.public_key else None})"
        )

    @property
    def algorithm(self) -> WakeupSignatureAlgorithm:
        return WakeupSignatureAlgorithm.ED25519


WakeupKey = HmacSha256Key | Ed25519Key


def _signing_input(algorithm: str, key_id: str, expires: str, body: str) -> bytes:
    header = b"\n".join(part.encode("utf-8") for part in (algorithm, key_id, expires))
    return _SIGNING_CONTEXT + b"\n" + header + b"\n" + body.encode("utf-8")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _from_b64url(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _require_key(key: object, role: str) -> WakeupKey:
    if not isinstance(key, HmacSha256Key | Ed25519Key):
        raise configuration_invalid(f"Wakeup {role} key must be an HmacSha256Key or an Ed25519Key.")
    return key


class WakeupSigner:
    """Signs wakeup bodies for the SQS transport (producer side)."""

    def __init__(
        self, *, key: WakeupKey, ttl: DurationInput = DEFAULT_SIGNATURE_TTL, clock: Clock = SYSTEM_CLOCK
    ):
        self.key = _require_key(key, "signer")
        if isinstance(key, Ed25519Key) and key.private_key is None:
            raise configuration_invalid(
                "Wakeup signer has only an Ed25519 public key: a producer needs the private key to sign.",
                keyId=key.key_id,
            )
        self.ttl = to_duration(ttl, code=ErrorCode.CONFIGURATION_INVALID, field="ttl")
        if not callable(getattr(clock, "now", None)):
            raise configuration_invalid("Wakeup signer clock must have a now() method.")
        self._clock = clock

    def sign(self, body: str) -> dict[str, str]:
        """The signature attributes (name -> string value) for one exact body."""
        expires = to_wire_time(self._clock.now() + self.ttl.to_timedelta())
        algorithm = self.key.algorithm.value
        data = _signing_input(algorithm, self.key.key_id, expires, body)
        if isinstance(self.key, HmacSha256Key):
            signature = hmac.new(self.key.secret, data, hashlib.sha256).digest()
        else:
            assert isinstance(self.key.private_key, Ed25519PrivateKey)
            signature = self.key.private_key.sign(data)
        return {
            SIGNATURE_ATTRIBUTE: _b64url(signature),
            ALGORITHM_ATTRIBUTE: algorithm,
            KEY_ID_ATTRIBUTE: self.key.key_id,
            EXPIRES_ATTRIBUTE: expires,
        }


def _reject(message: str, reason: SignatureRejection, **meta: Any) -> NoReturn:
    raise RunlaneError(ErrorCode.ADAPTER_CONTRACT_VIOLATION, message, meta={"reason": reason.value, **meta})


class WakeupVerifier:
    """Verifies signed wakeups (consumer side); accepts the primary key or, during rotation, a fallback."""

    def __init__(self, *, key: WakeupKey, fallback_key: WakeupKey | None = None, clock: Clock = SYSTEM_CLOCK):
        keys = [_require_key(key, "verifier")]
        if fallback_key is not None:
            keys.append(_require_key(fallback_key, "fallback"))
        for candidate in keys:
            if isinstance(candidate, Ed25519Key) and candidate.public_key is None:
                raise configuration_invalid(
                    "Wakeup verifier has only an Ed25519 private key: a consumer needs the public key.",
                    keyId=candidate.key_id,
                )
        if len(keys) == 2 and keys[0].key_id == keys[1].key_id:
            raise configuration_invalid("Wakeup verifier fallback_key must have a different key_id.")
        if not callable(getattr(clock, "now", None)):
            raise configuration_invalid("Wakeup verifier clock must have a now() method.")
        self.key = keys[0]
        self.fallback_key = keys[1] if len(keys) == 2 else None
        self._keys = {candidate.key_id: candidate for candidate in keys}
        self._clock = clock

    def verify(self, body: str, attributes: Mapping[str, str]) -> None:
        """Return if ``body`` has a valid, unexpired signature, else raise ``adapter_contract_violation``."""
        values = [attributes.get(name) for name in SIGNATURE_ATTRIBUTES]
        if not all(isinstance(value, str) and value for value in values):
            _reject("SQS wakeup signature is missing.", SignatureRejection.MISSING)
        signature_text, algorithm, key_id, expires = (str(value) for value in values)
        if algorithm not in WakeupSignatureAlgorithm._value2member_map_:
            _reject(
                f'SQS wakeup signature algorithm "{algorithm[:40]}" is not supported.',
                SignatureRejection.UNSUPPORTED_ALGORITHM,
            )
        key = self._keys.get(key_id)
        if key is None:
            _reject(
                "SQS wakeup signature key is not trusted.", SignatureRejection.UNKNOWN_KEY, keyId=key_id[:128]
            )
        try:
            expires_at = self._expiry(expires)
            signature = _from_b64url(signature_text)
            data = _signing_input(algorithm, key_id, expires, body)
        except (ValueError, RunlaneError):
            _reject("SQS wakeup signature is invalid.", SignatureRejection.INVALID, keyId=key_id)
        if key.algorithm.value != algorithm or not self._matches(key, signature, data):
            _reject("SQS wakeup signature is invalid.", SignatureRejection.INVALID, keyId=key_id)
        if self._clock.now() >= expires_at:
            _reject("SQS wakeup signature has expired.", SignatureRejection.EXPIRED, keyId=key_id)

    @staticmethod
    def _expiry(text: str) -> datetime:
        if _WIRE_TIME.match(text) is None:
            raise ValueError("expiry is not a wire timestamp")
        return from_wire_time(text, field=EXPIRES_ATTRIBUTE)

    @staticmethod
    def _matches(key: WakeupKey, signature: bytes, data: bytes) -> bool:
        if isinstance(key, HmacSha256Key):
            return hmac.compare_digest(hmac.new(key.secret, data, hashlib.sha256).digest(), signature)
        assert isinstance(key.public_key, Ed25519PublicKey)
        try:
            key.public_key.verify(signature, data)
        except InvalidSignature:
            return False
        return True
