"""Secrets a service must use again later (provider API keys, webhook signing secrets), at rest.

Fernet (AES-128-CBC + HMAC-SHA256) under a key derived with HKDF from a configured secret, so the
setting may be any length or phrase and is never used as the key itself; `info` separates the
keys of different purposes derived from one setting.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBox:
    def __init__(self, secret_key: str, *, info: bytes, setting: str, what: str = "secret") -> None:
        if not secret_key:
            raise ValueError(f"{setting} must not be empty")
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))
        self._setting = setting
        self._what = what

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(f"{self._what} cannot be decrypted with this {self._setting}") from exc
