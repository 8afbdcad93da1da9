"""Webhook signatures (Stripe-style): `Tollgate-Signature: t=<unix seconds>,v1=<hex>` where
hex = HMAC-SHA256(secret, f"{t}.{body}"). Receivers recompute it over the raw body they received,
compare in constant time, and refuse a timestamp older than their tolerance (replays)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Tollgate-Signature"
DELIVERY_ID_HEADER = "Tollgate-Delivery-Id"
ALERT_ID_HEADER = "Tollgate-Alert-Id"
EVENT_TYPE_HEADER = "Tollgate-Event-Type"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_hint(secret: str) -> str:
    """What listings show instead of the secret: its prefix and first characters."""
    return secret[: len(SECRET_PREFIX) + 4] + "…"


def compute(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The Tollgate-Signature header value."""
    return f"t={timestamp},v1={compute(secret, timestamp, body)}"


def parse(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures); raises ValueError on a malformed header."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise ValueError("malformed signature header")
        if name == "t":
            if not value.isdigit():
                raise ValueError("malformed timestamp")
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise ValueError("signature header needs t= and v1=")
    return timestamp, signatures


def verify(
    secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> bool:
    """True when one v1 signature matches and the timestamp is within tolerance of `now`."""
    try:
        timestamp, signatures = parse(header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = compute(secret, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in signatures)
