"""Provider secrets at rest: Fernet with a key derived from GATEWAY_SECRET_KEY."""

from __future__ import annotations

from tollgate.common import secretbox


class SecretBox(secretbox.SecretBox):
    def __init__(self, secret_key: str) -> None:
        super().__init__(
            secret_key,
            info=b"tollgate.gateway.provider-secrets.v1",
            setting="GATEWAY_SECRET_KEY",
            what="provider secret",
        )
