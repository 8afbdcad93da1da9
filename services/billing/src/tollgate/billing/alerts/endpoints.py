"""Webhook endpoints of an organisation: created with a secret shown once, listed, deleted."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.alerts import signing
from tollgate.billing.alerts.models import WebhookEndpoint
from tollgate.billing.alerts.secretbox import SecretBox
from tollgate.common.errors import InvalidRequest, NotFound

MAX_ENDPOINTS_PER_ORG = 20


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host; anything else is a 400 naming `url`."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise InvalidRequest("url must be an absolute http:// or https:// URL with a host.", param="url")
    if any(c.isspace() for c in url):
        raise InvalidRequest("url must not contain whitespace.", param="url")
    return url


@dataclass(frozen=True, slots=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str


async def create(
    session: AsyncSession, box: SecretBox, *, org_id: str, url: str, description: str | None
) -> CreatedEndpoint:
    url = check_url(url)
    active = await session.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.org_id == org_id, WebhookEndpoint.active)
    )
    if (active or 0) >= MAX_ENDPOINTS_PER_ORG:
        raise InvalidRequest(
            f"An organisation may have at most {MAX_ENDPOINTS_PER_ORG} webhook endpoints.",
            code="too_many_webhooks",
        )
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        id=f"we_{secrets.token_hex(12)}",
        org_id=org_id,
        url=url,
        description=description,
        secret_encrypted=box.encrypt(secret),
        secret_hint=signing.secret_hint(secret),
        active=True,
    )
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    return CreatedEndpoint(endpoint, secret)


async def list_active(session: AsyncSession, org_id: str) -> list[WebhookEndpoint]:
    rows = await session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.org_id == org_id, WebhookEndpoint.active)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list(rows)


async def delete(session: AsyncSession, *, org_id: str, endpoint_id: str) -> None:
    """Deactivates it (deliveries keep their history); pending ones to it end as failed."""
    result = await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.org_id == org_id, WebhookEndpoint.active)
        .values(active=False, deleted_at=func.now())
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound(f"No webhook endpoint {endpoint_id!r} in this organisation.", param="id")
