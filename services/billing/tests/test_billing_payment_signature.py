"""Provider webhook signatures (Tollgate-Signature: t=<unix>,v1=<hmac>) and the test provider."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tollgate.billing.payments import signature
from tollgate.billing.payments.providers import InvalidPayload, TestProvider
from tollgate.billing.payments.signature import SignatureRejected

SECRET = b"whsec_unit"
NOW = 1_800_000_000
BODY = b'{"id":"evt_1","type":"payment.succeeded","data":{"payment_id":"testpay_1"}}'


def verify(header: str | None, body: bytes = BODY, now: float = NOW) -> int:
    return signature.verify(SECRET, header, body, now=now, tolerance_seconds=300)


def test_a_signature_made_as_documented_verifies() -> None:
    digest = hmac.new(SECRET, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert verify(f"t={NOW},v1={digest}") == NOW
    assert signature.sign(SECRET, NOW, BODY) == f"t={NOW},v1={digest}"


def test_any_matching_v1_is_enough_while_a_secret_rotates() -> None:
    good = signature.compute(SECRET, NOW, BODY)
    assert verify(f"t={NOW}, v1={'0' * 64}, v1={good}") == NOW


@pytest.mark.parametrize(
    ("header", "body", "code"),
    [
        (None, BODY, "invalid_signature"),
        ("", BODY, "invalid_signature"),
        ("garbage", BODY, "invalid_signature"),
        (f"t={NOW}", BODY, "invalid_signature"),
        (f"v1={signature.compute(SECRET, NOW, BODY)}", BODY, "invalid_signature"),
        (f"t=abc,v1={signature.compute(SECRET, NOW, BODY)}", BODY, "invalid_signature"),
        (signature.sign(b"another secret", NOW, BODY), BODY, "invalid_signature"),
        (signature.sign(SECRET, NOW, BODY), BODY + b" ", "invalid_signature"),  # body tampered
        (signature.sign(SECRET, NOW - 301, BODY), BODY, "signature_expired"),  # replayed later
        (signature.sign(SECRET, NOW + 301, BODY), BODY, "signature_expired"),  # from the future
    ],
)
def test_bad_signatures_are_refused_with_a_400(header: str | None, body: bytes, code: str) -> None:
    with pytest.raises(SignatureRejected) as refused:
        verify(header, body)
    assert refused.value.status_code == 400 and refused.value.code == code


def test_the_tolerance_edge_is_inclusive() -> None:
    assert verify(signature.sign(SECRET, NOW - 300, BODY)) == NOW - 300


def test_the_test_provider_verifies_then_parses() -> None:
    provider = TestProvider(SECRET, clock=lambda: NOW)
    body = json.dumps(
        {"id": "evt_9", "type": "payment.succeeded", "data": {"payment_id": "p1", "amount_micros": 5}}
    ).encode()
    event = provider.parse_webhook({"tollgate-signature": signature.sign(SECRET, NOW, body)}, body)
    assert (event.event_id, event.event_type, event.provider_payment_id, event.amount_micros) == (
        "evt_9",
        "payment.succeeded",
        "p1",
        5,
    )
    with pytest.raises(SignatureRejected):
        provider.parse_webhook({}, body)
    for bad in (b"not json", b"{}", b'{"id":"e","type":"t","data":{}}', b"[1]"):
        with pytest.raises(InvalidPayload):
            provider.parse_webhook({"tollgate-signature": signature.sign(SECRET, NOW, bad)}, bad)


def test_the_test_provider_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        TestProvider(b"")
