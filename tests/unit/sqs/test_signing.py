"""Signed wakeups: what is accepted, what is refused, and which key material each side may hold."""

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.sqs import (
    ALGORITHM_ATTRIBUTE,
    EXPIRES_ATTRIBUTE,
    KEY_ID_ATTRIBUTE,
    SIGNATURE_ATTRIBUTE,
    Ed25519Key,
    HmacSha256Key,
    SignatureRejection,
    WakeupSigner,
    WakeupVerifier,
    create_sqs_wakeup_body,
)
from tests.unit.sqs.fakes import ManualClock, make_message

SECRET = b"s" * 32
BODY = create_sqs_wakeup_body(make_message("run_signed"))


def ed25519_pair(key_id: str = "ed-1") -> tuple[Ed25519Key, Ed25519Key, bytes]:
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return (
        Ed25519Key(key_id=key_id, private_key=private_pem),
        Ed25519Key(key_id=key_id, public_key=public_pem),
        private_pem,
    )


def rejected(verifier: WakeupVerifier, body: str, attributes: dict[str, str]) -> str:
    with pytest.raises(RunlaneError) as caught:
        verifier.verify(body, attributes)
    assert caught.value.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION
    assert caught.value.meta is not None
    reason: str = caught.value.meta["reason"]
    return reason


def config_error(build: object, *args: object, **kwargs: object) -> RunlaneError:
    with pytest.raises(RunlaneError) as caught:
        build(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.code is ErrorCode.CONFIGURATION_INVALID
    return caught.value


def test_hmac_round_trip_and_attribute_shape() -> None:
    clock = ManualClock()
    key = HmacSha256Key(key_id="k1", secret=SECRET)
    attributes = WakeupSigner(key=key, ttl="5m", clock=clock).sign(BODY)
    assert attributes[ALGORITHM_ATTRIBUTE] == "hmac-sha256"
    assert attributes[KEY_ID_ATTRIBUTE] == "k1"
    assert attributes[EXPIRES_ATTRIBUTE] == "2025-01-02T03:09:05.678Z"
    assert len(base64.urlsafe_b64decode(attributes[SIGNATURE_ATTRIBUTE] + "=")) == 32
    WakeupVerifier(key=key, clock=clock).verify(BODY, attributes)


def test_ed25519_round_trip_with_split_key_material() -> None:
    clock = ManualClock()
    producer_key, consumer_key, _ = ed25519_pair()
    attributes = WakeupSigner(key=producer_key, clock=clock).sign(BODY)
    assert attributes[ALGORITHM_ATTRIBUTE] == "ed25519"
    WakeupVerifier(key=consumer_key, clock=clock).verify(BODY, attributes)


def test_raw_ed25519_bytes_and_key_objects_are_accepted() -> None:
    clock = ManualClock()
    private = Ed25519PrivateKey.generate()
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    attributes = WakeupSigner(key=Ed25519Key(key_id="raw", private_key=private), clock=clock).sign(BODY)
    WakeupVerifier(key=Ed25519Key(key_id="raw", public_key=raw_public), clock=clock).verify(BODY, attributes)


def test_missing_and_partial_attributes_are_rejected() -> None:
    clock = ManualClock()
    key = HmacSha256Key(key_id="k1", secret=SECRET)
    verifier = WakeupVerifier(key=key, clock=clock)
    attributes = WakeupSigner(key=key, clock=clock).sign(BODY)
    assert rejected(verifier, BODY, {}) == SignatureRejection.MISSING
    for name in attributes:
        partial = {k: v for k, v in attributes.items() if k != name}
        assert rejected(verifier, BODY, partial) == SignatureRejection.MISSING


def test_altered_body_forged_signature_and_swapped_fields_are_invalid() -> None:
    clock = ManualClock()
    key = HmacSha256Key(key_id="k1", secret=SECRET)
    verifier = WakeupVerifier(key=key, clock=clock)
    attributes = WakeupSigner(key=key, clock=clock).sign(BODY)
    altered = BODY.replace("run_signed", "run_other")
    assert rejected(verifier, altered, attributes) == SignatureRejection.INVALID
    forged = WakeupSigner(key=HmacSha256Key(key_id="k1", secret=b"x" * 32), clock=clock).sign(BODY)
    assert rejected(verifier, BODY, forged) == SignatureRejection.INVALID
    later = {**attributes, EXPIRES_ATTRIBUTE: "2099-01-01T00:00:00.000Z"}
    assert rejected(verifier, BODY, later) == SignatureRejection.INVALID
    assert rejected(verifier, BODY, {**attributes, SIGNATURE_ATTRIBUTE: "!!"}) == SignatureRejection.INVALID
    assert rejected(verifier, BODY, {**attributes, EXPIRES_ATTRIBUTE: "soon"}) == SignatureRejection.INVALID


def test_expired_signature_is_rejected_even_though_it_is_authentic() -> None:
    clock = ManualClock()
    key = HmacSha256Key(key_id="k1", secret=SECRET)
    attributes = WakeupSigner(key=key, ttl="30s", clock=clock).sign(BODY)
    verifier = WakeupVerifier(key=key, clock=clock)
    clock.advance(seconds=29.999)
    verifier.verify(BODY, attributes)
    clock.advance(seconds=0.001)
    assert rejected(verifier, BODY, attributes) == SignatureRejection.EXPIRED


def test_unknown_algorithm_and_untrusted_key_id() -> None:
    clock = ManualClock()
    key = HmacSha256Key(key_id="k1", secret=SECRET)
    verifier = WakeupVerifier(key=key, clock=clock)
    attributes = WakeupSigner(key=key, clock=clock).sign(BODY)
    none_alg = {**attributes, ALGORITHM_ATTRIBUTE: "none"}
    assert rejected(verifier, BODY, none_alg) == SignatureRejection.UNSUPPORTED_ALGORITHM
    other_kid = {**attributes, KEY_ID_ATTRIBUTE: "k2"}
    assert rejected(verifier, BODY, other_kid) == SignatureRejection.UNKNOWN_KEY


def test_algorithm_confusion_is_invalid() -> None:
    """An HMAC signature presented as ed25519 for an HMAC key id does not verify."""
    clock = ManualClock()
    key = HmacSha256Key(key_id="k1", secret=SECRET)
    attributes = WakeupSigner(key=key, clock=clock).sign(BODY)
    confused = {**attributes, ALGORITHM_ATTRIBUTE: "ed25519"}
    assert rejected(WakeupVerifier(key=key, clock=clock), BODY, confused) == SignatureRejection.INVALID


def test_rotation_accepts_primary_and_fallback_keys() -> None:
    clock = ManualClock()
    old = HmacSha256Key(key_id="2024", secret=b"o" * 32)
    new_producer, new_consumer, _ = ed25519_pair("2025")
    verifier = WakeupVerifier(key=new_consumer, fallback_key=old, clock=clock)
    verifier.verify(BODY, WakeupSigner(key=old, clock=clock).sign(BODY))
    verifier.verify(BODY, WakeupSigner(key=new_producer, clock=clock).sign(BODY))
    retired = WakeupVerifier(key=new_consumer, clock=clock)
    assert (
        rejected(retired, BODY, WakeupSigner(key=old, clock=clock).sign(BODY))
        == SignatureRejection.UNKNOWN_KEY
    )


def test_producer_with_only_a_public_key_is_refused() -> None:
    _, public_only, _ = ed25519_pair()
    error = config_error(WakeupSigner, key=public_only)
    assert "private key" in error.message


def test_consumer_with_only_a_private_key_is_refused() -> None:
    private_only, _, _ = ed25519_pair()
    error = config_error(WakeupVerifier, key=private_only)
    assert "public key" in error.message
    _, public_only, _ = ed25519_pair("fallback")
    config_error(WakeupVerifier, key=public_only, fallback_key=private_only)


def test_bad_key_material_is_configuration_invalid() -> None:
    config_error(HmacSha256Key, key_id="k1", secret=b"short")
    config_error(HmacSha256Key, key_id="bad id", secret=SECRET)
    config_error(Ed25519Key, key_id="k1")
    config_error(Ed25519Key, key_id="k1", private_key=b"not a key")
    config_error(
        Ed25519Key, key_id="k1", public_key="-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    )
    _, other_public, _ = ed25519_pair()
    mine, _, _ = ed25519_pair()
    config_error(Ed25519Key, key_id="k1", private_key=mine.private_key, public_key=other_public.public_key)
    key = HmacSha256Key(key_id="k1", secret=SECRET)
    config_error(WakeupVerifier, key=key, fallback_key=HmacSha256Key(key_id="k1", secret=b"t" * 32))
    config_error(WakeupSigner, key="secret")
    config_error(WakeupSigner, key=key, ttl="0s")


def test_secrets_are_not_in_repr() -> None:
    assert "sss" not in repr(HmacSha256Key(key_id="k1", secret=SECRET))
