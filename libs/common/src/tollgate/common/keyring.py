"""Secrets that rotate: one current value plus the previous ones still accepted (docs/operations.md,
"Rotate secrets").

Every rotating secret is configured the same way: the current value in its usual variable (e.g.
`AUTH_JWT_SECRET`) and the values it replaced, newest first, comma-separated in a `..._PREVIOUS_...`
variable. New material is always made with the current value; what was made with a previous one is
still accepted until the operator drops it from the list.

Each value has a key id derived from it (an HMAC under a fixed label, truncated to 64 bits, like a
key thumbprint), so an operator never names keys and a token, hash or ciphertext can say which key
made it without revealing anything usable about that key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass

from tollgate.common.secret_policy import Secret

_KEY_ID_LABEL = b"tollgate key id v1"
KEY_ID_LENGTH = 16  # hex characters


def key_id(secret: str) -> str:
    """A stable, non-secret name for `secret`. Derived with HMAC so it is no shortcut to guessing it."""
    return hmac.new(secret.encode(), _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:KEY_ID_LENGTH]


def parse_previous(text: str | None) -> tuple[str, ...]:
    """`a,b,c` (surrounding blanks and empty entries ignored) as a tuple, in the order given."""
    if not text:
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current secret (used to make new material) and the previous ones (only accepted)."""

    current: str
    previous: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.current:
            raise ValueError("the current secret must not be empty")
        # The current value listed again among the previous ones, or a value listed twice, is harmless
        # but would be tried twice: keep the first of each.
        seen = {self.current}
        unique = []
        for value in self.previous:
            if value not in seen:
                seen.add(value)
                unique.append(value)
        object.__setattr__(self, "previous", tuple(unique))

    @classmethod
    def from_settings(cls, current: str, previous: str | None) -> Keyring:
        return cls(current, parse_previous(previous))

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def __iter__(self) -> Iterator[str]:
        """The current secret first, then the previous ones, newest first."""
        yield self.current
        yield from self.previous

    def by_id(self) -> dict[str, str]:
        return {key_id(secret): secret for secret in self}


def rotating_secrets(
    current_variable: str,
    current: str | None,
    previous_variable: str,
    previous: str | None,
    development_default: str,
) -> list[Secret]:
    """What secret_policy.enforce checks for one rotating secret: the current value and every
    previous one, each named (`AUTH_JWT_PREVIOUS_SECRETS[2]` is the list's second entry), never shown.
    A previous value is as good as the current one to an attacker while it is accepted."""
    checked = [Secret(current_variable, current, development_default)]
    checked += [
        Secret(f"{previous_variable}[{n}]", value, development_default)
        for n, value in enumerate(parse_previous(previous), start=1)
    ]
    return checked
