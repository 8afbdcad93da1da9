"""`python -m tollgate.billing.rotate_secrets` on the tests' scratch PostgreSQL: every webhook signing
secret ends up under the current BILLING_ALERTS_SECRET_KEY (bare ciphertexts from before key ids
included), a second run changes nothing, an unreadable one is reported and kept."""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import subprocess
import sys
import uuid

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.alerts.models import WebhookEndpoint
from tollgate.billing.alerts.secretbox import SecretBox
from tollgate.billing.rotate_secrets import reencrypt_webhook_secrets
from tollgate.common.keyring import Keyring, key_id

OLD, NEW, LOST = "old-alerts-key-" + "o" * 30, "new-alerts-key-" + "n" * 30, "lost-key-" + "x" * 30


def legacy(secret: str, plaintext: str) -> str:
    """A webhook secret as billing stored it before key ids: a bare Fernet token."""
    info = b"tollgate.billing.webhook-secrets.v1"
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(raw)).encrypt(plaintext.encode()).decode()


def endpoint(org_id: str, ciphertext: str) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=f"we_{uuid.uuid4().hex[:24]}",
        org_id=org_id,
        url="https://hooks.example.com/x",
        secret_encrypted=ciphertext,
        secret_hint="whsec_…abcd",
        active=True,
    )


async def secrets_of(sessions: async_sessionmaker[AsyncSession], org_id: str) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.execute(select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id))
        return {e.id: e.secret_encrypted for e in rows.scalars()}


async def test_webhook_secrets_move_to_the_current_key_once_and_the_command_reports_it(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    # the scratch database is shared with other tests: their endpoints are re-encrypted too, so
    # the counts here are of this test's rows, read back from the table
    org = f"org_rotate_{uuid.uuid4().hex[:8]}"
    rows = {
        "legacy": endpoint(org, legacy(OLD, "whsec_legacy")),
        "old": endpoint(org, SecretBox(OLD).encrypt("whsec_old")),
        "current": endpoint(org, SecretBox(NEW).encrypt("whsec_current")),
        "lost": endpoint(org, SecretBox(LOST).encrypt("whsec_lost")),
    }
    async with sessions.begin() as session:
        session.add_all(rows.values())
    ids = {name: e.id for name, e in rows.items()}
    before = await secrets_of(sessions, org)

    report = await reencrypt_webhook_secrets(sessions, SecretBox(Keyring(NEW, (OLD,))))
    assert f"webhook_endpoints.id={ids['lost']}" in report.unreadable
    after = await secrets_of(sessions, org)
    only_new = SecretBox(NEW)
    assert only_new.decrypt(after[ids["legacy"]]) == "whsec_legacy"
    assert only_new.decrypt(after[ids["old"]]) == "whsec_old"
    assert after[ids["old"]].startswith(key_id(NEW) + ":")
    assert after[ids["current"]] == before[ids["current"]]
    assert after[ids["lost"]] == before[ids["lost"]]

    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
    env |= {
        "BILLING_DATABASE_URL": database_url,
        "BILLING_ALERTS_SECRET_KEY": NEW,
        "BILLING_ALERTS_PREVIOUS_SECRET_KEYS": OLD,
        "TOLLGATE_ENV": "development",
    }
    command = [sys.executable, "-m", "tollgate.billing.rotate_secrets"]
    run = functools.partial(subprocess.run, command, env=env, capture_output=True, text=True, timeout=60)
    proc = await asyncio.to_thread(run)
    assert proc.returncode == 1, proc.stderr[-2000:]  # the lost one keeps the status non-zero
    assert " 0 re-encrypted" in proc.stdout and "unreadable" in proc.stdout  # nothing left to move
    assert ids["lost"] in proc.stderr + proc.stdout
    assert NEW not in proc.stdout + proc.stderr and OLD not in proc.stdout + proc.stderr
    assert await secrets_of(sessions, org) == after
