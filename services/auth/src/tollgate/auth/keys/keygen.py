"""Key material: generation and the keyed hash that is all the database ever sees."""

from __future__ import annotations

import secrets

from tollgate.common.api_keys import api_key_prefix, hash_api_key
from tollgate.common.keyring import Keyring, key_id

KEY_SCHEME = "tg_"  # recognisable by people and by secret scanners
KEY_RANDOM_BYTES = 30  # 240 bits: guessing is hopeless, so a fast keyed hash is safe to store
MAX_KEY_LENGTH = 256  # longer input is not one of our keys; refuse it before hashing or querying


def generate_api_key() -> str:
    return KEY_SCHEME + secrets.token_urlsafe(KEY_RANDOM_BYTES)


class KeyHasher:
    """Holds the peppers so that callers never handle them; the same hash keys the gateway's cache.

    AUTH_KEY_PEPPER makes every new hash; while a rotation is under way the peppers it replaced
    (AUTH_KEY_PREVIOUS_PEPPERS) still verify, and a hash found under one of them is rewritten under
    the current pepper (keys/peppers.py)."""

    def __init__(self, peppers: Keyring | str) -> None:
        if not peppers:
            raise ValueError("the key pepper must not be empty")
        peppers = Keyring(peppers) if isinstance(peppers, str) else peppers
        self._pepper = peppers.current
        self._previous = peppers.previous
        self.pepper_id = peppers.current_id  # stored beside each hash (api_keys.key_pepper_id)

    def hash(self, api_key: str) -> str:
        return hash_api_key(api_key, self._pepper)

    def previous_hashes(self, material: str) -> dict[str, str]:
        """hash → pepper id under each previous pepper (empty outside a rotation)."""
        return {hash_api_key(material, pepper): key_id(pepper) for pepper in self._previous}

    def all_hashes(self, material: str) -> list[str]:
        """Under the current pepper first, then each previous one."""
        return [self.hash(material), *self.previous_hashes(material)]

    @staticmethod
    def prefix(api_key: str) -> str:
        return api_key_prefix(api_key)
