"""`python -m tollgate.gateway.rotate_secrets` on a scratch PostgreSQL (GATEWAY_TEST_ADMIN_URL, the
test profile's by default): every stored provider secret, the models' and their deployments', ends
up under the current GATEWAY_SECRET_KEY; bare ciphertexts from before key ids included; a second run
changes nothing; an unreadable secret is reported, not lost."""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from scratch_db import scratch_database
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.keyring import Keyring, key_id
from tollgate.gateway.catalog.models import Model
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.rotate_secrets import reencrypt_provider_secrets

OLD, NEW, LOST = "old-gateway-key-" + "o" * 30, "new-gateway-key-" + "n" * 30, "lost-key-" + "x" * 30


def legacy(secret: str, plaintext: str) -> str:
    """A provider secret as the gateway stored it before key ids: a bare Fernet token."""
    info = b"tollgate.gateway.provider-secrets.v1"
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(raw)).encrypt(plaintext.encode()).decode()


@pytest.fixture
def database_url() -> Iterator[str]:
    with scratch_database("scratch_gateway_rotate") as url:
        yield url


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url, pool_size=2)
    yield make_sessionmaker(engine)
    await engine.dispose()


def model(name: str, api_key_encrypted: str | None, deployments: list[dict[str, object]]) -> Model:
    return Model(
        name=name,
        provider="openai",
        base_url="http://upstream/v1",
        upstream_model="m",
        api_key_encrypted=api_key_encrypted,
        extra_config={"deployments": deployments, "temperature": 1},
    )


async def stored(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Model]:
    async with sessions() as session:
        return {m.name: m for m in (await session.execute(select(Model))).scalars()}


async def test_every_provider_secret_moves_to_the_current_key_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    old_box = SecretBox(OLD)
    async with sessions.begin() as session:
        session.add_all(
            [
                model("legacy", legacy(OLD, "sk-legacy"), []),
                model(
                    "with-deployments",
                    old_box.encrypt("sk-top"),
                    [
                        {"name": "east", "api_key_encrypted": old_box.encrypt("sk-east")},
                        {"name": "west", "api_key_encrypted": legacy(OLD, "sk-west")},
                        {"name": "keyless", "api_key_encrypted": None},
                    ],
                ),
                model("no-secret", None, []),
                model("already", SecretBox(NEW).encrypt("sk-already"), []),
                model("lost", SecretBox(LOST).encrypt("sk-lost"), []),
            ]
        )
    before = await stored(sessions)
    rotating = SecretBox(Keyring(NEW, (OLD,)))

    report = await reencrypt_provider_secrets(sessions, rotating)
    assert (report.reencrypted, report.already_current) == (4, 1)
    assert len(report.unreadable) == 1 and "lost" in report.unreadable[0]
    assert "sk-" not in " ".join(report.unreadable)

    after = await stored(sessions)
    only_new = SecretBox(NEW)  # what the gateway runs on once GATEWAY_PREVIOUS_SECRET_KEYS is emptied
    assert only_new.decrypt(after["legacy"].api_key_encrypted or "") == "sk-legacy"
    assert only_new.decrypt(after["with-deployments"].api_key_encrypted or "") == "sk-top"
    deployments = after["with-deployments"].extra_config["deployments"]
    assert [only_new.decrypt(d["api_key_encrypted"]) for d in deployments[:2]] == ["sk-east", "sk-west"]
    assert deployments[2] == {"name": "keyless", "api_key_encrypted": None}
    assert after["with-deployments"].extra_config["temperature"] == 1
    assert after["no-secret"].api_key_encrypted is None
    assert after["already"].api_key_encrypted == before["already"].api_key_encrypted  # untouched
    assert after["lost"].api_key_encrypted == before["lost"].api_key_encrypted  # kept for a later try
    # the snapshot poller's change detector: nothing to reload, the plaintexts did not change
    assert {n: m.updated_at for n, m in after.items()} == {n: m.updated_at for n, m in before.items()}
    for name in ("legacy", "with-deployments"):
        assert (after[name].api_key_encrypted or "").startswith(key_id(NEW) + ":")

    again = await reencrypt_provider_secrets(sessions, rotating)
    assert (again.reencrypted, again.already_current, len(again.unreadable)) == (0, 5, 1)


async def test_the_command_runs_with_the_services_settings_and_exits_nonzero_on_an_unreadable_secret(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        session.add_all(
            [model("old", SecretBox(OLD).encrypt("sk-old"), []), model("lost", legacy(LOST, "x"), [])]
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_SECRET_KEY": NEW,
        "GATEWAY_PREVIOUS_SECRET_KEYS": OLD,
        "TOLLGATE_ENV": "development",
    }
    command = [sys.executable, "-m", "tollgate.gateway.rotate_secrets"]
    run = functools.partial(subprocess.run, command, env=env, capture_output=True, text=True, timeout=60)
    first = await asyncio.to_thread(run)
    assert first.returncode == 1, first.stderr[-2000:]  # the unreadable one: reported, status says so
    assert "1 re-encrypted, 0 already under the current key, 1 unreadable" in first.stdout
    assert NEW not in first.stdout + first.stderr and OLD not in first.stdout + first.stderr
    second = await asyncio.to_thread(run)
    assert "0 re-encrypted, 1 already under the current key, 1 unreadable" in second.stdout
    assert SecretBox(NEW).decrypt((await stored(sessions))["old"].api_key_encrypted or "") == "sk-old"


async def test_feishu_bot_secrets_move_to_the_current_key(sessions: async_sessionmaker[AsyncSession]) -> None:
    from tollgate.common.reencrypt import Reencryption
    from tollgate.gateway.bots.models import FeishuBot, FeishuBotEvent
    from tollgate.gateway.bots.rotation import reencrypt_bot_secrets

    old_box = SecretBox(OLD)
    async with sessions.begin() as session:
        bot = FeishuBot(
            org_id="org-1",
            name="b",
            app_id="cli_1",
            model_id="m",
            api_key_encrypted=old_box.encrypt("tg_key"),
            api_key_hint="tg_key",
            app_secret_encrypted=old_box.encrypt("app-secret"),
            encrypt_key_encrypted=old_box.encrypt("ek"),
            verification_token_encrypted=None,
        )
        session.add(bot)
        await session.flush()
        session.add(
            FeishuBotEvent(
                bot_id=bot.id, event_id="ev-1", message_id="om_1", prompt_encrypted=old_box.encrypt("hi")
            )
        )
    report = Reencryption()
    await reencrypt_bot_secrets(sessions, SecretBox(Keyring(NEW, (OLD,))), report)
    assert (report.reencrypted, report.already_current, report.unreadable) == (4, 0, [])
    only_new = SecretBox(NEW)
    async with sessions() as session:
        bot = (await session.execute(select(FeishuBot))).scalar_one()
        event = (await session.execute(select(FeishuBotEvent))).scalar_one()
    assert [only_new.decrypt(v) for v in (bot.api_key_encrypted, bot.app_secret_encrypted)] == [
        "tg_key",
        "app-secret",
    ]
    assert only_new.decrypt(bot.encrypt_key_encrypted or "") == "ek"
    assert bot.verification_token_encrypted is None
    assert only_new.decrypt(event.prompt_encrypted or "") == "hi"
