"""Webhook signing secrets at rest: Fernet with a key derived (HKDF) from BILLING_ALERTS_SECRET_KEY
(and, while a rotation is under way, from the keys in BILLING_ALERTS_PREVIOUS_SECRET_KEYS)."""

from __future__ import annotations

from tollgate.common import secretbox
from tollgate.common.keyring import Keyring

SETTING = "BILLING_ALERTS_SECRET_KEY"
PREVIOUS_SETTING = "BILLING_ALERTS_PREVIOUS_SECRET_KEYS"


class SecretBox(secretbox.SecretBox):
    def __init__(self, keys: Keyring | str) -> None:
        super().__init__(
            keys,
            info=b"tollgate.billing.webhook-secrets.v1",
            setting=SETTING,
            what="webhook secret",
        )
