"""`python -m tollgate.billing.rotate_secrets`: every stored webhook signing secret (deleted endpoints
included) re-encrypted with the current BILLING_ALERTS_SECRET_KEY, so the keys in
BILLING_ALERTS_PREVIOUS_SECRET_KEYS can be dropped (docs/operations.md, "Rotate secrets").
Idempotent, and safe beside running billing processes: the dispatcher decrypts each secret when it
signs, with any listed key."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.alerts.models import WebhookEndpoint
from tollgate.billing.alerts.wiring import secret_box, secret_box_policy
from tollgate.billing.config import BillingSettings
from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.reencrypt import Reencryption, reencrypt_cli
from tollgate.common.secret_policy import enforce
from tollgate.common.secretbox import SecretBox

log = logging.getLogger("tollgate.billing")


async def reencrypt_webhook_secrets(
    sessions: async_sessionmaker[AsyncSession], box: SecretBox
) -> Reencryption:
    report = Reencryption()
    async with sessions() as session:
        stmt = select(WebhookEndpoint.id).order_by(WebhookEndpoint.id)
        endpoint_ids = (await session.execute(stmt)).scalars().all()
    for endpoint_id in endpoint_ids:
        async with sessions.begin() as session:  # one row per transaction, locked while it is rewritten
            stmt = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).with_for_update()
            endpoint = (await session.execute(stmt)).scalar_one_or_none()
            if endpoint is not None:
                where = f"webhook_endpoints.id={endpoint.id}"
                endpoint.secret_encrypted = report.rewrite(box, endpoint.secret_encrypted, where)
    return report


async def run(settings: BillingSettings) -> Reencryption:
    enforce(settings.environment, secret_box_policy(settings), log)  # the service's own start check
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        return await reencrypt_webhook_secrets(make_sessionmaker(engine), secret_box(settings))
    finally:
        await engine.dispose()


def main() -> None:
    settings = BillingSettings()
    reencrypt_cli("billing", settings.log_level, lambda: run(settings))


if __name__ == "__main__":
    main()
