"""Rotating secrets (keyring.py), the secret box's key ids (secretbox.py) and the re-encryption
bookkeeping (reencrypt.py)."""

from __future__ import annotations

import base64
import logging
import re

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tollgate.common.keyring import Keyring, key_id, parse_previous, rotating_secrets
from tollgate.common.reencrypt import Reencryption
from tollgate.common.secret_policy import InsecureSecrets, enforce
from tollgate.common.secretbox import SecretBox

OLD, NEW, OTHER = "old-secret-" + "o" * 30, "new-secret-" + "n" * 30, "other-secret-" + "x" * 30
INFO = b"tollgate.test.v1"


def box(keys: Keyring | str) -> SecretBox:
    return SecretBox(keys, info=INFO, setting="TEST_SECRET_KEY", what="test secret")


def legacy_ciphertext(secret: str, plaintext: str) -> str:
    """What SecretBox wrote before key ids: a bare Fernet token under the HKDF-derived key."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(raw)).encrypt(plaintext.encode()).decode()


def test_key_ids_are_stable_short_hex_distinct_and_reveal_nothing_obvious() -> None:
    assert key_id(OLD) == key_id(OLD)
    assert key_id(OLD) != key_id(NEW)
    assert re.fullmatch(r"[0-9a-f]{16}", key_id(OLD))
    assert OLD[:8] not in key_id(OLD)


def test_previous_values_parse_in_order_without_blanks_and_without_repeats() -> None:
    assert parse_previous(None) == ()
    assert parse_previous("") == ()
    assert parse_previous(" a , b,,c ,") == ("a", "b", "c")
    ring = Keyring(NEW, (OLD, NEW, OLD, OTHER))
    assert list(ring) == [NEW, OLD, OTHER]  # the current first, then each previous once
    assert list(ring.by_id()) == [key_id(NEW), key_id(OLD), key_id(OTHER)]
    assert Keyring.from_settings(NEW, f"{OLD},{OTHER}").previous == (OLD, OTHER)
    with pytest.raises(ValueError):
        Keyring("")


def test_production_checks_every_previous_value_naming_its_position_never_its_value() -> None:
    checked = rotating_secrets(
        "X_SECRET", NEW, "X_PREVIOUS_SECRETS", f"{OLD},short-one,dev-default", "dev-default"
    )
    with pytest.raises(InsecureSecrets) as refused:
        enforce("production", checked, logging.getLogger("test"))
    message = str(refused.value)
    assert "X_PREVIOUS_SECRETS[2] is shorter than 32 characters" in message
    assert "X_PREVIOUS_SECRETS[3] is the development default" in message
    assert "X_PREVIOUS_SECRETS[1]" not in message and "X_SECRET " not in message
    assert "short-one" not in message and OLD not in message
    enforce(
        "production",
        rotating_secrets("X_SECRET", NEW, "X_PREVIOUS_SECRETS", OLD, "dev-default"),
        logging.getLogger("t"),
    )


def test_ciphertexts_name_the_current_key_and_open_with_any_listed_key() -> None:
    before = box(OLD).encrypt("sk-provider")
    assert before.startswith(key_id(OLD) + ":") and "sk-provider" not in before
    rotated = box(Keyring(NEW, (OLD,)))
    assert rotated.decrypt(before) == "sk-provider"
    after = rotated.encrypt("sk-provider")
    assert after.startswith(key_id(NEW) + ":")
    assert box(NEW).decrypt(after) == "sk-provider"  # once re-encrypted, the old key may go


def test_a_key_id_no_longer_listed_is_refused_with_a_clear_error() -> None:
    before = box(OLD).encrypt("sk-provider")
    with pytest.raises(ValueError, match=f"key id '{key_id(OLD)}'.*TEST_SECRET_KEY"):
        box(Keyring(NEW, (OTHER,))).decrypt(before)
    forged = key_id(NEW) + ":" + before.split(":", 1)[1]  # the right id on another key's token
    with pytest.raises(ValueError, match="cannot be decrypted"):
        box(NEW).decrypt(forged)


def test_ciphertexts_from_before_key_ids_still_decrypt_with_any_listed_key() -> None:
    legacy = legacy_ciphertext(OLD, "whsec-legacy")
    assert ":" not in legacy
    assert box(OLD).decrypt(legacy) == "whsec-legacy"
    assert box(Keyring(NEW, (OTHER, OLD))).decrypt(legacy) == "whsec-legacy"
    with pytest.raises(ValueError, match="cannot be decrypted"):
        box(NEW).decrypt(legacy)


def test_reencryption_moves_old_and_legacy_ciphertexts_and_leaves_current_ones() -> None:
    rotated = box(Keyring(NEW, (OLD,)))
    legacy, old, current = legacy_ciphertext(OLD, "a"), box(OLD).encrypt("b"), rotated.encrypt("c")
    unreadable = box(OTHER).encrypt("d")
    assert rotated.needs_reencryption(legacy) and rotated.needs_reencryption(old)
    assert not rotated.needs_reencryption(current)
    report = Reencryption()
    moved = [report.rewrite(rotated, c, f"row {n}") for n, c in enumerate([legacy, old, current, unreadable])]
    assert moved[2] == current and moved[3] == unreadable  # untouched
    assert [box(NEW).decrypt(c) for c in moved[:3]] == ["a", "b", "c"]
    assert (report.reencrypted, report.already_current, report.unreadable) == (2, 1, ["row 3"])
    again = Reencryption()
    for c in moved[:3]:
        again.rewrite(rotated, c, "again")
    assert (again.reencrypted, again.already_current) == (0, 3)  # idempotent
