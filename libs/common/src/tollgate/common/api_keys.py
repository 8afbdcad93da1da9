"""API key hashing shared by auth (which stores the hash) and the gateway (whose principal cache is
keyed by it, and dropped when an `ApiKeyChanged` event names that hash)."""

from __future__ import annotations

import hashlib
import hmac

# Only for local development: deployments set their own pepper (AUTH_KEY_PEPPER, and the gateway's twin).
DEV_KEY_PEPPER = "tollgate-dev-pepper-change-me"

KEY_PREFIX_LENGTH = 11  # "tg_" + 8 characters: enough to recognise a key in logs, useless to an attacker


def hash_api_key(api_key: str, pepper: str) -> str:
    """HMAC-SHA256 hex of the key. Keys are high-entropy, so a keyed fast hash is enough (no KDF),
    and the pepper means a stolen table alone cannot be checked against guessed keys."""
    return hmac.new(pepper.encode(), api_key.encode(), hashlib.sha256).hexdigest()


def api_key_prefix(api_key: str) -> str:
    return api_key[:KEY_PREFIX_LENGTH]
