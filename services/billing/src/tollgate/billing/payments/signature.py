"""Provider webhook signatures: `Tollgate-Signature: t=<unix>,v1=<hex>` where the hex is
HMAC-SHA256(secret, f"{t}.{body}") (Stripe's scheme). Several v1 values may be sent while a secret
is rotated; one matching is enough. Pure functions: the caller passes the clock."""

from __future__ import annotations

import hashlib
import hmac

from tollgate.common.errors import InvalidRequest

SIGNATURE_HEADER = "Tollgate-Signature"


class SignatureRejected(InvalidRequest):
    code = "invalid_signature"


def compute(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The header value a provider sends (used by tests and by the test provider's tooling)."""
    return f"t={timestamp},v1={compute(secret, timestamp, body)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                timestamp = None
        elif name == "v1":
            signatures.append(value.strip())
    if timestamp is None or not signatures:
        raise SignatureRejected(
            f"{SIGNATURE_HEADER} must look like 't=<unix>,v1=<hex>'.", param=SIGNATURE_HEADER
        )
    return timestamp, signatures


def verify(secret: bytes, header: str | None, body: bytes, *, now: float, tolerance_seconds: int) -> int:
    """The signed timestamp when the header is valid for this body; SignatureRejected otherwise."""
    if not header:
        raise SignatureRejected(f"Missing {SIGNATURE_HEADER} header.", param=SIGNATURE_HEADER)
    timestamp, signatures = _parse(header)
    expected = compute(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise SignatureRejected("The webhook signature does not match its body.", param=SIGNATURE_HEADER)
    # checked after the HMAC, so a stale timestamp tells nothing to someone without the secret
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureRejected(
            f"The webhook timestamp is more than {tolerance_seconds} s away from now.",
            param=SIGNATURE_HEADER,
            code="signature_expired",
        )
    return timestamp
