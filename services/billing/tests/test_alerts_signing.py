"""Webhook signatures, the secret box and the retry schedule: pure functions."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from tollgate.billing.alerts import signing
from tollgate.billing.alerts.endpoints import check_url
from tollgate.billing.alerts.policy import RetryPolicy
from tollgate.billing.alerts.secretbox import SecretBox
from tollgate.common.errors import InvalidRequest

SECRET = "whsec_test"
BODY = b'{"id":"budget_threshold:b:2026-11:80","type":"cost_alert"}'


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    header = signing.sign(SECRET, 1_700_000_000, BODY)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert signing.verify(SECRET, header, BODY, now=1_700_000_100)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("whsec_other", BODY, 1_700_000_000),  # wrong secret
        (SECRET, BODY + b" ", 1_700_000_000),  # body changed by one byte
        (SECRET, BODY, 1_700_000_000 + 301),  # replayed after the tolerance
        (SECRET, BODY, 1_700_000_000 - 301),  # from too far in the future
    ],
)
def test_verification_refuses_tampering_and_replays(secret: str, body: bytes, now: int) -> None:
    header = signing.sign(SECRET, 1_700_000_000, BODY)
    assert not signing.verify(secret, header, body, now=now)


@pytest.mark.parametrize("header", ["", "t=1", "v1=ab", "t=x,v1=ab", "garbage", "t=1;v1=ab"])
def test_malformed_headers_never_verify(header: str) -> None:
    assert not signing.verify(SECRET, header, BODY, now=1)


def test_any_of_several_v1_signatures_may_match() -> None:
    good = signing.compute(SECRET, 10, BODY)
    assert signing.verify(SECRET, f"t=10,v1={'0' * 64},v1={good}", BODY, now=10)


def test_new_secrets_are_random_and_hinted_without_revealing_them() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    assert a != b and a.startswith("whsec_") and len(a) > 40
    assert signing.secret_hint(a) == a[:10] + "…"


def test_secret_box_round_trips_and_refuses_another_key() -> None:
    box = SecretBox("key-one")
    token = box.encrypt("whsec_abc")
    assert "whsec_abc" not in token
    assert box.decrypt(token) == "whsec_abc"
    with pytest.raises(ValueError, match="cannot be decrypted"):
        SecretBox("key-two").decrypt(token)
    with pytest.raises(ValueError):
        SecretBox("")


def test_backoff_doubles_from_the_base_up_to_the_cap_then_stops() -> None:
    policy = RetryPolicy(max_attempts=8, base_s=30, cap_s=600)
    assert policy.schedule() == [30, 60, 120, 240, 480, 600, 600]
    assert policy.delay_after(1) == 30
    assert policy.delay_after(8) is None
    assert RetryPolicy(max_attempts=1, base_s=1, cap_s=1).schedule() == []
    assert RetryPolicy(max_attempts=3, base_s=0.2, cap_s=2).schedule() == [0.2, 0.4]


@pytest.mark.parametrize(("max_attempts", "base", "cap"), [(0, 1, 1), (3, 0, 1), (3, 5, 1)])
def test_nonsense_retry_policies_are_refused(max_attempts: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=max_attempts, base_s=base, cap_s=cap)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/hook", "https://example.com/a?b=c", " https://hooks.example.org "]
)
def test_webhook_urls_accepted(url: str) -> None:
    assert check_url(url) == url.strip()


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "example.com/x", "http://", "https://exa mple.com", "http://h:99999/", ""]
)
def test_webhook_urls_refused(url: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        check_url(url)
    assert err.value.param == "url"
