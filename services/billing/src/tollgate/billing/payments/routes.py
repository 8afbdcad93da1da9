"""The Bedrock-style gateway's admin routes: recharge an API key's organisation (platform admin), list
payments (platform admin: all; organisation owner/admin: their organisation's)."""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, Depends, Header, Query
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.deps import (
    admin_principal,
    current_principal,
    get_auth,
    get_holds,
    get_metrics,
    get_sessions,
    key_in_body,
)
from tollgate.billing.holds.service import HoldService
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.payments import service
from tollgate.billing.payments.schemas import PaymentList, PaymentOut, RechargeRequest, RechargeResponse
from tollgate.common.auth_client import AuthClient, Principal
from tollgate.common.errors import Forbidden, InvalidRequest
from tollgate.common.money import micros_to_credits

log = logging.getLogger(__name__)
router = APIRouter()


@router.post("/admin/api-key/recharge", response_model=RechargeResponse)
async def recharge(
    body: RechargeRequest,
    admin: Principal = Depends(admin_principal),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key", max_length=255),
    auth: AuthClient = Depends(get_auth),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
    holds: HoldService = Depends(get_holds),
    metrics: BillingMetrics = Depends(get_metrics),
) -> RechargeResponse:
    target = await key_in_body(auth, body.api_key)
    async with sessions.begin() as session:
        result = await service.recharge(
            session,
            org_id=target.org_id,
            key_id=target.key_id,
            amount_micros=body.amount_micros,
            payment_ref=idempotency_key or f"pay_{uuid.uuid4().hex}",
            method="admin",
        )
    await service.refresh_cached_wallet(holds, result.wallet)
    if not result.replayed:
        metrics.recharges.inc()
        log.info(
            "recharged",
            extra={
                "org_id": result.org_id,
                "key_id": result.key_id,
                "amount_micros": result.amount_micros,
                "payment_id": result.payment_id,
                "by_key_id": admin.key_id,
            },
        )
    return RechargeResponse(
        payment_id=result.payment_id,
        api_key_id=result.key_id,
        org_id=result.org_id,
        amount=micros_to_credits(result.amount_micros),
        balance=micros_to_credits(result.wallet.balance_micros),
    )


def _int_param(value: str | None, name: str, default: int | None, low: int, high: int | None) -> int | None:
    """The Bedrock-style gateway sends empty query values (`?key_id=`): empty means absent."""
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be an integer", param=name) from exc
    if number < low or (high is not None and number > high):
        raise InvalidRequest(f"{name} must be between {low} and {high or 'any'}", param=name)
    return number


async def payments_reader(principal: Principal = Depends(current_principal)) -> Principal:
    """A platform admin (every organisation) or an owner/admin of the key's organisation (its own)."""
    if not (principal.is_admin or principal.is_org_admin):
        raise Forbidden(
            "Listing payments needs an admin API key or an organisation owner's/admin's key.",
            code="admin_required",
        )
    return principal


@router.get("/admin/payment/list", response_model=PaymentList)
async def list_payments(
    key_id: str | None = Query(default=None),
    limit: str | None = Query(default=None),
    offset: str | None = Query(default=None),
    reader: Principal = Depends(payments_reader),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
) -> PaymentList:
    key = _int_param(key_id, "key_id", None, 1, None)
    page_size = _int_param(limit, "limit", 10, 1, 100) or 10
    skip = _int_param(offset, "offset", 0, 0, None) or 0
    # an org admin sees their organisation's payments only: another org's key id lists nothing
    org_id = None if reader.is_admin else reader.org_id
    async with sessions() as session:
        rows, total = await service.list_payments(
            session, key_id=key, org_id=org_id, limit=page_size, offset=skip
        )
    return PaymentList(data=[PaymentOut.of(p) for p in rows], total=total)
