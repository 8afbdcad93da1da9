"""GET /admin/audit/list: query and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tollgate.auth.audit.models import AuditEvent


def _blank_to_none(value: Any) -> Any:
    # Like the other admin lists, empty filters (`?action=&actor_key_id=`) mean "no filter".
    return None if isinstance(value, str) and not value.strip() else value


def _blank_to(default: int) -> Any:
    return BeforeValidator(lambda v: default if _blank_to_none(v) is None else v)


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Annotated[Annotated[str, Field(max_length=100)] | None, BeforeValidator(_blank_to_none)] = None
    actor_key_id: Annotated[
        Annotated[int, Field(ge=1, le=9_223_372_036_854_775_807)] | None, BeforeValidator(_blank_to_none)
    ] = None
    limit: Annotated[int, _blank_to(50), Field(ge=1, le=500)] = 50
    offset: Annotated[int, _blank_to(0), Field(ge=0)] = 0


class AuditInfo(BaseModel):
    id: int
    at: datetime
    actor_key_id: int | None
    actor_user_id: str | None
    actor_org_id: str | None
    org_id: str | None
    action: str
    target_type: str
    target_id: str | None
    ip: str | None
    request_id: str | None
    details: dict[str, Any]

    @classmethod
    def build(cls, e: AuditEvent) -> AuditInfo:
        return cls(
            id=e.id,
            at=e.at,
            actor_key_id=e.actor_key_id,
            actor_user_id=e.actor_user_id,
            actor_org_id=e.actor_org_id,
            org_id=e.org_id,
            action=e.action,
            target_type=e.target_type,
            target_id=e.target_id,
            ip=e.ip,
            request_id=e.request_id,
            details=dict(e.details or {}),
        )


class AuditPage(BaseModel):
    data: list[AuditInfo]
    total: int
