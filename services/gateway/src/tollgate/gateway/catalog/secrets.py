"""Provider secrets at rest: Fernet with a key derived from GATEWAY_SECRET_KEY (and, while a rotation
is under way, from the keys in GATEWAY_PREVIOUS_SECRET_KEYS)."""

from __future__ import annotations

from tollgate.common import secretbox
from tollgate.common.keyring import Keyring, rotating_secrets
from tollgate.common.secret_policy import Secret
from tollgate.gateway.config import DEV_SECRET_KEY, GatewaySettings

SETTING = "GATEWAY_SECRET_KEY"
PREVIOUS_SETTING = "GATEWAY_PREVIOUS_SECRET_KEYS"


class SecretBox(secretbox.SecretBox):
    def __init__(self, keys: Keyring | str) -> None:
        super().__init__(
            keys,
            info=b"tollgate.gateway.provider-secrets.v1",
            setting=SETTING,
            what="provider secret",
        )


def secret_box_policy(settings: GatewaySettings) -> list[Secret]:
    return rotating_secrets(
        SETTING, settings.secret_key, PREVIOUS_SETTING, settings.previous_secret_keys, DEV_SECRET_KEY
    )


def secret_box(settings: GatewaySettings) -> SecretBox:
    return SecretBox(Keyring.from_settings(settings.secret_key, settings.previous_secret_keys))
