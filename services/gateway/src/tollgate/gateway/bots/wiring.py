"""Builds the Feishu bots' parts from the gateway's settings (called by main.py)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import APIRouter
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.secretbox import SecretBox
from tollgate.gateway.bots import routes
from tollgate.gateway.bots.clients import FeishuClient, ModelCaller
from tollgate.gateway.bots.intake import EventIntake
from tollgate.gateway.bots.service import KeyResolver, ModelKnown
from tollgate.gateway.bots.worker import BotMetrics, BotWorker, WorkerTiming
from tollgate.gateway.config import GatewaySettings
from tollgate.gateway.principals.dependencies import PrincipalDependency

# the signed timestamp of an accepted push is younger than the event memory by this margin
_REPLAY_MARGIN_S = 3600


@dataclass
class FeishuBots:
    sessions: async_sessionmaker[AsyncSession]
    box: SecretBox
    resolve_key: KeyResolver
    model_known: ModelKnown
    intake: EventIntake
    worker: BotWorker
    metrics: BotMetrics
    http: httpx.AsyncClient

    def router(self, current_principal: PrincipalDependency) -> APIRouter:
        return routes.build_router(
            self.sessions,
            self.box,
            current_principal,
            self.resolve_key,
            self.model_known,
            self.intake,
            self.worker.kick,
            self.metrics,
        )

    async def close(self) -> None:
        await self.worker.close()
        await self.http.aclose()


def build_bots(
    settings: GatewaySettings,
    sessions: async_sessionmaker[AsyncSession],
    box: SecretBox,
    resolve_key: KeyResolver,
    model_known: ModelKnown,
    registry: CollectorRegistry,
) -> FeishuBots:
    http = httpx.AsyncClient(trust_env=False, timeout=settings.feishu_http_timeout_s)
    gateway_url = settings.feishu_gateway_url or f"http://127.0.0.1:{settings.http_port}"
    call_timeout = settings.upstream_timeout_s + 10
    metrics = BotMetrics(registry)
    worker = BotWorker(
        sessions,
        box,
        FeishuClient(http, settings.feishu_api_base_url),
        ModelCaller(http, gateway_url, settings.feishu_max_tokens, call_timeout),
        metrics,
        WorkerTiming(
            poll_s=settings.feishu_poll_s,
            call_deadline_s=call_timeout + settings.feishu_call_grace_s,
            reply_lease_s=2 * settings.feishu_http_timeout_s + 5,
            retention_s=settings.feishu_event_retention_s,
            reply_max_attempts=settings.feishu_reply_max_attempts,
        ),
    )
    intake = EventIntake(box, max_age_s=settings.feishu_event_retention_s - _REPLAY_MARGIN_S)
    return FeishuBots(sessions, box, resolve_key, model_known, intake, worker, metrics, http)
