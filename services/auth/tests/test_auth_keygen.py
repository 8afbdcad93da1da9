import re

import pytest

from tollgate.auth.keys.keygen import KeyHasher, generate_api_key
from tollgate.common.api_keys import hash_api_key


def test_generated_keys_are_recognisable_urlsafe_and_unique() -> None:
    keys = {generate_api_key() for _ in range(1000)}
    assert len(keys) == 1000
    for key in keys:
        assert re.fullmatch(r"tg_[A-Za-z0-9_-]{40}", key), key


def test_hash_is_hmac_sha256_hex_deterministic_and_peppered() -> None:
    key = generate_api_key()
    digest = KeyHasher("pepper-a").hash(key)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == KeyHasher("pepper-a").hash(key)
    assert digest != KeyHasher("pepper-b").hash(key)
    assert digest != KeyHasher("pepper-a").hash(key + "x")
    # the gateway hashes with the shared helper: both sides must agree on the cache key
    assert digest == hash_api_key(key, "pepper-a")
    assert key[3:] not in digest


def test_prefix_is_scheme_plus_eight_characters() -> None:
    key = "tg_AbCd1234zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
    assert KeyHasher.prefix(key) == "tg_AbCd1234"
    assert len(KeyHasher.prefix(generate_api_key())) == 11


def test_empty_pepper_is_refused() -> None:
    with pytest.raises(ValueError):
        KeyHasher("")
