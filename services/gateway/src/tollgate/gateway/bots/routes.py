"""Feishu bots: the Bedrock-style gateway's admin routes (`/admin/bot/feishu/*`) and each bot's
event endpoint (`POST /bot/feishu/{bot_id}/events`, the Request URL set in Feishu's console).
Thin: parse, call the service, shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.auth_client import Principal
from tollgate.common.errors import Forbidden, TollgateError
from tollgate.common.http import ORJSONResponse
from tollgate.common.secretbox import SecretBox
from tollgate.gateway.bots.intake import ACCEPTED, EventIntake
from tollgate.gateway.bots.repository import BotRepository, EventRepository
from tollgate.gateway.bots.schemas import BotDeleteIn, BotListOut, BotOut, BotSaveIn
from tollgate.gateway.bots.service import BotService, KeyResolver, ModelKnown, to_out
from tollgate.gateway.bots.worker import BotMetrics
from tollgate.gateway.principals.dependencies import PrincipalDependency


def bot_admin(current: PrincipalDependency) -> Callable[[Principal], Awaitable[Principal]]:
    """A platform admin key, or an owner's or admin's key of the organisation: bots are the
    organisation's (the caller's org_id); another organisation's bot is not found."""

    async def require(principal: Principal = Depends(current)) -> Principal:
        if not (principal.is_admin or principal.is_org_admin):
            raise Forbidden(
                "This route needs an admin API key, or an organisation owner's or admin's key.",
                code="admin_required",
            )
        return principal

    return require


def build_router(
    sessions: async_sessionmaker[AsyncSession],
    box: SecretBox,
    current_principal: PrincipalDependency,
    resolve_key: KeyResolver,
    model_known: ModelKnown,
    intake: EventIntake,
    wake_worker: Callable[[], None],
    metrics: BotMetrics,
) -> APIRouter:
    router = APIRouter()
    admin = Depends(bot_admin(current_principal))

    def service(session: AsyncSession) -> BotService:
        return BotService(BotRepository(session), box, resolve_key, model_known)

    @router.post("/admin/bot/feishu/save", response_model=BotOut)
    async def save_bot(body: BotSaveIn, principal: Principal = admin) -> BotOut:
        async with sessions() as session, session.begin():
            return to_out(await service(session).save(principal.org_id, body))

    @router.post("/admin/bot/feishu/delete")
    async def delete_bot(body: BotDeleteIn, principal: Principal = admin) -> dict[str, Any]:
        async with sessions() as session, session.begin():
            await service(session).delete(principal.org_id, body.id)
        return {"id": body.id, "deleted": True}

    @router.get("/admin/bot/feishu/list", response_model=BotListOut)
    async def list_bots(
        q: str | None = None,
        limit: int = Query(10, ge=1, le=500),
        offset: int = Query(0, ge=0),
        principal: Principal = admin,
    ) -> BotListOut:
        async with sessions() as session:
            rows, total = await service(session).list_bots(principal.org_id, q or None, limit, offset)
            return BotListOut(data=[to_out(r) for r in rows], total=total, limit=limit, offset=offset)

    @router.post("/bot/feishu/{bot_id}/events")
    async def feishu_events(bot_id: int, request: Request) -> ORJSONResponse:
        """Answered at once (Feishu waits 3 s, and 1 s for the challenge); the answer to a message
        is sent later by the worker."""
        raw = await request.body()
        try:
            async with sessions() as session, session.begin():
                pushed = await intake.receive(
                    BotRepository(session), EventRepository(session), bot_id, raw, request.headers
                )
        except TollgateError:
            metrics.events.labels("refused").inc()
            raise
        metrics.events.labels(pushed.outcome).inc()
        if pushed.outcome == ACCEPTED:
            wake_worker()
        return ORJSONResponse(pushed.answer)

    return router
