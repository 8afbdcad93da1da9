"""Secrets that fail closed (secret_policy.py): in production a missing, default or short secret
stops the start naming its variable and never its value; in development a default is only logged."""

from __future__ import annotations

import logging

import pytest

from tollgate.common.secret_policy import InsecureSecrets, Secret, enforce

LOG = logging.getLogger("test")
STRONG = "s" * 40


def test_production_refuses_each_weak_secret_naming_it_and_not_its_value() -> None:
    secrets = [
        Secret("A_SECRET", None),
        Secret(
            "B_SECRET", "published-default-value-of-some-length", "published-default-value-of-some-length"
        ),
        Secret("C_SECRET", "short-and-weak"),
        Secret("D_SECRET", STRONG),
        Secret("E_OPTIONAL", None, required=False),
    ]
    with pytest.raises(InsecureSecrets) as refused:
        enforce("production", secrets, LOG)
    message = str(refused.value)
    assert "A_SECRET is not set" in message
    assert "B_SECRET is the development default" in message
    assert "C_SECRET is shorter than 32 characters" in message
    assert "D_SECRET" not in message and "E_OPTIONAL" not in message
    assert "short-and-weak" not in message and "published-default" not in message


def test_production_starts_with_strong_secrets_and_an_unset_optional_one() -> None:
    enforce("production", [Secret("A_SECRET", STRONG, "default"), Secret("ADMIN", None, required=False)], LOG)
    with pytest.raises(InsecureSecrets, match="ADMIN is shorter"):
        enforce("production", [Secret("ADMIN", "tiny", required=False)], LOG)


def test_development_only_warns_about_defaults(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        enforce("development", [Secret("A_SECRET", "dev", "dev"), Secret("B_SECRET", None)], LOG)
    assert "A_SECRET is the development default" in caplog.text


def test_an_unknown_environment_is_refused() -> None:
    with pytest.raises(InsecureSecrets, match="TOLLGATE_ENV must be one of development, production"):
        enforce("prod", [], LOG)
