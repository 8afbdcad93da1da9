"""GET /ws (SloughGPT's real-time events) and the platform admin's maintenance notice."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime

from fastapi import APIRouter, Depends, WebSocket
from pydantic import BaseModel, Field

from tollgate.common.auth_client import Principal
from tollgate.gateway.principals.dependencies import PrincipalDependency, admin_dependency
from tollgate.gateway.realtime.events import maintenance_event
from tollgate.gateway.realtime.session import Realtime, serve

log = logging.getLogger(__name__)


class MaintenanceNotice(BaseModel):
    message: str = Field(min_length=1, max_length=2000)
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def build_router(rt: Realtime, current: PrincipalDependency) -> APIRouter:
    router = APIRouter()
    require_admin = admin_dependency(current)

    @router.websocket("/ws")
    async def events(websocket: WebSocket) -> None:
        await serve(websocket, rt)

    @router.post("/admin/system/maintenance", status_code=202)
    async def announce_maintenance(
        notice: MaintenanceNotice, admin: Principal = Depends(require_admin)
    ) -> dict[str, object]:
        """A `system_maintenance` event to every subscribed /ws connection of every organisation."""
        event = maintenance_event(
            f"maint_{uuid.uuid4().hex}",
            notice.message,
            notice.starts_at.isoformat() if notice.starts_at else "",
            notice.ends_at.isoformat() if notice.ends_at else "",
            int(time.time() * 1000),
        )
        await rt.store.append([event])
        # audit lives in auth and the gateway has no client for it: the gateway's log records who sent it
        log.info(
            "maintenance notice broadcast",
            extra={"event_id": event.event_id, "key_id": admin.key_id, "org_id": admin.org_id},
        )
        return {"event_id": event.event_id, "type": event.type, "data": event.data}

    return router
