"""Key material: generation and the keyed hash that is all the database ever sees."""

from __future__ import annotations

import secrets

from tollgate.common.api_keys import api_key_prefix, hash_api_key

KEY_SCHEME = "tg_"  # recognisable by people and by secret scanners
KEY_RANDOM_BYTES = 30  # 240 bits: guessing is hopeless, so a fast keyed hash is safe to store
MAX_KEY_LENGTH = 256  # longer input is not one of our keys; refuse it before hashing or querying


def generate_api_key() -> str:
    return KEY_SCHEME + secrets.token_urlsafe(KEY_RANDOM_BYTES)


class KeyHasher:
    """Holds the pepper so that callers never handle it; the same hash keys the gateway's cache."""

    def __init__(self, pepper: str) -> None:
        if not pepper:
            raise ValueError("the key pepper must not be empty")
        self._pepper = pepper

    def hash(self, api_key: str) -> str:
        return hash_api_key(api_key, self._pepper)

    @staticmethod
    def prefix(api_key: str) -> str:
        return api_key_prefix(api_key)
