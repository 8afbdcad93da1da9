"""Bot secrets re-encrypted with the current GATEWAY_SECRET_KEY (part of
`python -m tollgate.gateway.rotate_secrets`): each bot's four secrets, and the prompts and answers
of events not yet replied."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.reencrypt import Reencryption
from tollgate.common.secretbox import SecretBox
from tollgate.gateway.bots.models import FeishuBot, FeishuBotEvent

_BOT_COLUMNS = (
    "api_key_encrypted",
    "app_secret_encrypted",
    "encrypt_key_encrypted",
    "verification_token_encrypted",
)
_EVENT_COLUMNS = ("prompt_encrypted", "answer_encrypted")


async def reencrypt_bot_secrets(
    sessions: async_sessionmaker[AsyncSession], box: SecretBox, report: Reencryption
) -> None:
    for table, columns in ((FeishuBot, _BOT_COLUMNS), (FeishuBotEvent, _EVENT_COLUMNS)):
        async with sessions() as session:
            ids = (await session.execute(select(table.id).order_by(table.id))).scalars().all()
        for row_id in ids:
            async with sessions.begin() as session:  # one row per transaction, locked meanwhile
                stmt = select(table).where(table.id == row_id).with_for_update()
                row = (await session.execute(stmt)).scalar_one_or_none()
                if row is None:
                    continue
                for column in columns:
                    value = getattr(row, column)
                    if value:
                        setattr(row, column, report.rewrite(box, value, f"{table.__tablename__}.id={row_id}"))
