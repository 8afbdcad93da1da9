"""`python -m tollgate.gateway.rotate_secrets`: every stored provider secret (a model's key and each of
its config.deployments' keys, soft-deleted models included) re-encrypted with the current
GATEWAY_SECRET_KEY, so the keys in GATEWAY_PREVIOUS_SECRET_KEYS can be dropped (docs/operations.md,
"Rotate secrets"). Idempotent; safe beside running gateways, which need no reload: the plaintext,
and so what they hold in memory, does not change, and `updated_at` is left alone."""

from __future__ import annotations

import copy
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.reencrypt import Reencryption, reencrypt_cli
from tollgate.common.secret_policy import enforce
from tollgate.common.secretbox import SecretBox
from tollgate.gateway.bots.rotation import reencrypt_bot_secrets
from tollgate.gateway.catalog.models import Model
from tollgate.gateway.catalog.secrets import secret_box, secret_box_policy
from tollgate.gateway.config import GatewaySettings

log = logging.getLogger("tollgate.gateway")


async def reencrypt_provider_secrets(
    sessions: async_sessionmaker[AsyncSession], box: SecretBox
) -> Reencryption:
    report = Reencryption()
    async with sessions() as session:
        model_ids = (await session.execute(select(Model.id).order_by(Model.id))).scalars().all()
    for model_id in model_ids:
        async with sessions.begin() as session:  # one row per transaction, locked while it is rewritten
            stmt = select(Model).where(Model.id == model_id).with_for_update()
            model = (await session.execute(stmt)).scalar_one_or_none()
            if model is None:  # deleted meanwhile
                continue
            where = f"models.id={model.id} ({model.name})"
            if model.api_key_encrypted:
                model.api_key_encrypted = report.rewrite(box, model.api_key_encrypted, where)
            extra = copy.deepcopy(model.extra_config or {})
            deployments = extra.get("deployments")
            if isinstance(deployments, list):
                for deployment in deployments:
                    if isinstance(deployment, dict) and isinstance(deployment.get("api_key_encrypted"), str):
                        label = f"{where} deployment {deployment.get('name')!r}"
                        deployment["api_key_encrypted"] = report.rewrite(
                            box, deployment["api_key_encrypted"], label
                        )
                if extra != model.extra_config:
                    model.extra_config = extra  # a new object: the ORM sees the JSONB change
    return report


async def run(settings: GatewaySettings) -> Reencryption:
    enforce(settings.environment, secret_box_policy(settings), log)  # the service's own start check
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        sessions, box = make_sessionmaker(engine), secret_box(settings)
        report = await reencrypt_provider_secrets(sessions, box)
        await reencrypt_bot_secrets(sessions, box, report)  # Feishu bots' secrets (bots/)
        return report
    finally:
        await engine.dispose()


def main() -> None:
    settings = GatewaySettings()
    reencrypt_cli("gateway", settings.log_level, lambda: run(settings))


if __name__ == "__main__":
    main()
