"""Webhook signing secrets at rest: Fernet with a key derived (HKDF) from BILLING_ALERTS_SECRET_KEY."""

from __future__ import annotations

from tollgate.common import secretbox


class SecretBox(secretbox.SecretBox):
    def __init__(self, secret_key: str) -> None:
        super().__init__(
            secret_key,
            info=b"tollgate.billing.webhook-secrets.v1",
            setting="BILLING_ALERTS_SECRET_KEY",
            what="webhook secret",
        )
