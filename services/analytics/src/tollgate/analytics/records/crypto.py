"""Chat content at rest: SecretBox (Fernet under an HKDF-derived key) from ANALYTICS_SECRET_KEY,
rotating with ANALYTICS_PREVIOUS_SECRET_KEYS; and the keyed fingerprint that groups requests of
one conversation into a thread without storing anything readable."""

from __future__ import annotations

import hashlib
import hmac

from tollgate.common import secretbox
from tollgate.common.keyring import Keyring

SETTING = "ANALYTICS_SECRET_KEY"
PREVIOUS_SETTING = "ANALYTICS_PREVIOUS_SECRET_KEYS"
DEV_SECRET_KEY = "tollgate-dev-only-analytics-secret-change-me"


class ContentBox(secretbox.SecretBox):
    def __init__(self, keys: Keyring | str) -> None:
        super().__init__(
            keys, info=b"tollgate.analytics.chat-records.v1", setting=SETTING, what="chat record"
        )
        current = keys.current if isinstance(keys, Keyring) else keys
        # keyed by the current secret: a conversation continued after a rotation starts a new thread
        self._fingerprint_key = hashlib.sha256(
            b"tollgate.analytics.thread-key.v1" + current.encode()
        ).digest()

    def fingerprint(self, text: str) -> str:
        return hmac.new(self._fingerprint_key, text.encode(), hashlib.sha256).hexdigest()[:40]

    def maybe_encrypt(self, text: str | None) -> str | None:
        return None if text is None else self.encrypt(text)

    def maybe_decrypt(self, ciphertext: str | None) -> str | None:
        return None if ciphertext is None else self.decrypt(ciphertext)
