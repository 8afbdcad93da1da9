"""Chat content re-encrypted under the current ANALYTICS_SECRET_KEY (docs/chat-records.md, "Rotating
the key"), so the keys in ANALYTICS_PREVIOUS_SECRET_KEYS can be dropped.

Chat records are many rows, so unlike the other services' rotations this walks each table in
batches: one transaction per batch, its rows locked (`FOR UPDATE`), in id order after the last id
done. Only rows with a ciphertext not yet under the current key id are selected (a `LIKE` on the
`<key id>:` prefix), so a run stopped anywhere and started again skips what is done: idempotent and
resumable, safe beside the running consumer (new rows are written under the current key already)
and the retention purge (a row deleted meanwhile is simply not there). Decrypting and encrypting a
batch is CPU work: it runs off the event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from tollgate.analytics.records.models import ChatEntry, ChatSession, ChatThread
from tollgate.common.reencrypt import Reencryption
from tollgate.common.secretbox import SecretBox

log = logging.getLogger("tollgate.analytics")

DEFAULT_BATCH = 500
# every encrypted column of the chat records, per table
ENCRYPTED: tuple[tuple[type[Any], tuple[InstrumentedAttribute[str | None], ...]], ...] = (
    (ChatSession, (ChatSession.title_enc,)),
    (ChatThread, (ChatThread.title_enc,)),
    (ChatEntry, (ChatEntry.messages_enc, ChatEntry.answer_enc)),
)

Progress = Callable[[str, int, Reencryption], None]


def _rewrite(
    box: SecretBox, report: Reencryption, table: str, names: Sequence[str], rows: list[Any]
) -> list[dict[str, Any]]:
    """The new values of a batch's rows (only the columns that change; CPU: runs in a thread)."""
    changes = []
    for row in rows:
        values: dict[str, Any] = {}
        for name in names:
            old = getattr(row, name)
            if old is None:
                continue
            new = report.rewrite(box, old, f"{table}.id={row.id} {name}")
            if new != old:
                values[name] = new
        if values:
            changes.append({"row_id": row.id, **values})
    return changes


async def _table(
    sessions: async_sessionmaker[AsyncSession],
    box: SecretBox,
    report: Reencryption,
    model: type[Any],
    columns: tuple[InstrumentedAttribute[str | None], ...],
    batch: int,
    progress: Progress | None,
) -> None:
    table = model.__tablename__
    names = [c.key for c in columns]
    current = f"{box.current_key_id}:"
    stale = or_(*(and_(c.is_not(None), not_(c.startswith(current, autoescape=True))) for c in columns))
    last = 0
    while True:
        async with sessions.begin() as session:
            stmt = (
                select(model.id, *columns)
                .where(model.id > last, stale)
                .order_by(model.id)
                .limit(batch)
                .with_for_update(of=model)
            )
            rows = list((await session.execute(stmt)).all())
            if not rows:
                return
            changes = await asyncio.to_thread(_rewrite, box, report, table, names, rows)
            # one UPDATE per set of changed columns (executemany), within the batch's transaction
            by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for change in changes:
                by_columns.setdefault(tuple(sorted(k for k in change if k != "row_id")), []).append(change)
            for changed, params in by_columns.items():
                stmt_u = (
                    update(model.__table__)
                    .where(model.__table__.c.id == bindparam("row_id"))
                    .values({name: bindparam(name) for name in changed})
                )
                await session.execute(stmt_u, params)
            last = rows[-1].id
        if progress is not None:
            progress(table, last, report)


async def reencrypt_chat_content(
    sessions: async_sessionmaker[AsyncSession],
    box: SecretBox,
    *,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> Reencryption:
    """Every stored chat title, request and answer under the current key; `progress(table, last id,
    report)` after each committed batch."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    report = Reencryption()
    for model, columns in ENCRYPTED:
        await _table(sessions, box, report, model, columns, batch, progress)
    return report
