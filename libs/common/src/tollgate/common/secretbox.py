"""Secrets a service must use again later (provider API keys, webhook signing secrets), at rest.

Fernet (AES-128-CBC + HMAC-SHA256) under a key derived with HKDF from a configured secret, so the
setting may be any length or phrase and is never used as the key itself; `info` separates the
keys of different purposes derived from one setting.

The configured secret rotates (tollgate.common.keyring): a ciphertext is `<key id>:<Fernet token>`,
made with the current secret and opened with whichever listed secret its key id names. Ciphertexts
from before key ids (a bare Fernet token, which never contains `:`) are opened with any listed
secret. `needs_reencryption` and `reencrypt` are what the rotation commands use.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tollgate.common.keyring import Keyring, key_id

_SEPARATOR = ":"


def _fernet(secret: str, info: bytes) -> Fernet:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(raw))


class SecretBox:
    def __init__(self, keys: Keyring | str, *, info: bytes, setting: str, what: str = "secret") -> None:
        """`keys`: the keyring, or one secret (no previous ones), e.g. in tests."""
        if isinstance(keys, str):
            if not keys:
                raise ValueError(f"{setting} must not be empty")
            keys = Keyring(keys)
        self._current_id = keys.current_id
        self._fernets = {key_id(secret): _fernet(secret, info) for secret in keys}
        self._setting = setting
        self._what = what

    @property
    def current_key_id(self) -> str:
        return self._current_id

    def encrypt(self, plaintext: str) -> str:
        token = self._fernets[self._current_id].encrypt(plaintext.encode()).decode()
        return f"{self._current_id}{_SEPARATOR}{token}"

    def decrypt(self, ciphertext: str) -> str:
        kid, sep, token = ciphertext.rpartition(_SEPARATOR)
        if not sep:  # from before key ids: any listed secret may have made it
            candidates = list(self._fernets.values())
        elif kid in self._fernets:
            candidates = [self._fernets[kid]]
        else:
            raise ValueError(
                f"{self._what} cannot be decrypted: it was encrypted with key id {kid!r}, which "
                f"{self._setting} and its previous keys no longer list"
            )
        for fernet in candidates:
            try:
                return fernet.decrypt(token.encode()).decode()
            except InvalidToken:
                continue
        raise ValueError(f"{self._what} cannot be decrypted with this {self._setting}")

    def needs_reencryption(self, ciphertext: str) -> bool:
        """True unless it is already under the current key (by its key id)."""
        kid, sep, _ = ciphertext.rpartition(_SEPARATOR)
        return not sep or kid != self._current_id

    def reencrypt(self, ciphertext: str) -> str:
        """The same plaintext under the current key; ValueError when no listed key opens it."""
        return self.encrypt(self.decrypt(ciphertext))
