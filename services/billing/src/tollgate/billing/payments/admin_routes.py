"""Platform-admin payment routes: refunds, adjustments, credit packages, reconciliation."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.deps import (
    admin_principal,
    get_auth,
    get_holds,
    get_metrics,
    get_sessions,
    key_in_body,
)
from tollgate.billing.holds.service import HoldService
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.payments import package_repository, refunds
from tollgate.billing.payments.admin_schemas import (
    AdjustRequest,
    AdjustResponse,
    PackageSaveRequest,
    ReconcileResponse,
    RefundRequest,
    RefundResponse,
)
from tollgate.billing.payments.purchase_schemas import PackageList, PackageOut
from tollgate.billing.payments.service import refresh_cached_wallet
from tollgate.billing.wallets.reconcile import Reconciler
from tollgate.common.auth_client import AuthClient, Principal
from tollgate.common.errors import InvalidRequest, NotFound

log = logging.getLogger(__name__)
router = APIRouter()

IdempotencyKey = Header(default=None, alias="Idempotency-Key", min_length=1, max_length=255)


@router.post("/admin/payment/refund", response_model=RefundResponse)
async def refund(
    body: RefundRequest,
    admin: Principal = Depends(admin_principal),
    idempotency_key: str | None = IdempotencyKey,
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
    holds: HoldService = Depends(get_holds),
    metrics: BillingMetrics = Depends(get_metrics),
) -> RefundResponse:
    refund_ref = body.refund_id or idempotency_key
    if refund_ref is None:
        raise InvalidRequest(
            "A refund needs a refund_id or an Idempotency-Key, so a retry cannot refund twice.",
            param="Idempotency-Key",
        )
    async with sessions.begin() as session:
        result = await refunds.refund(
            session,
            payment_id=body.payment_id,
            amount_micros=body.amount_micros,
            refund_ref=refund_ref,
            reason=body.reason,
            by_key_id=admin.key_id,
        )
    await refresh_cached_wallet(holds, result.wallet)
    r, p = result.refund, result.payment
    if not result.replayed:
        metrics.refunds.inc()
        metrics.refunded_credits_micros.inc(r.credits_micros)
        log.info(
            "refunded",
            extra={
                "refund_id": r.id,
                "payment_id": p.id,
                "org_id": p.org_id,
                "amount_micros": r.amount_micros,
                "credits_micros": r.credits_micros,
                "by_key_id": admin.key_id,
            },
        )
    return RefundResponse(
        id=r.id,
        refund_ref=r.refund_ref,
        payment_id=p.id,
        org_id=p.org_id,
        amount_micros=r.amount_micros,
        credits_micros=r.credits_micros,
        payment_status=p.status,
        refunded_micros=p.refunded_micros,
        balance_micros=None if result.wallet is None else result.wallet.balance_micros,
        replayed=result.replayed,
    )


async def _target(
    body: AdjustRequest, auth: AuthClient, sessions: async_sessionmaker[AsyncSession]
) -> tuple[str, int | None]:
    if body.api_key is not None:
        target = await key_in_body(auth, body.api_key)
        return target.org_id, target.key_id
    assert body.org_id is not None
    async with sessions() as session:
        # billing cannot see auth's organisations: an org it never billed is most likely a typo
        if not await refunds.wallet_exists(session, body.org_id):
            raise NotFound("Billing has no wallet for this org_id.", param="org_id", code="wallet_not_found")
    return body.org_id, None


@router.post("/admin/payment/adjust", response_model=AdjustResponse)
async def adjust(
    body: AdjustRequest,
    admin: Principal = Depends(admin_principal),
    idempotency_key: str | None = IdempotencyKey,
    auth: AuthClient = Depends(get_auth),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
    holds: HoldService = Depends(get_holds),
    metrics: BillingMetrics = Depends(get_metrics),
) -> AdjustResponse:
    if idempotency_key is None:
        raise InvalidRequest("An adjustment needs an Idempotency-Key header.", param="Idempotency-Key")
    org_id, key_id = await _target(body, auth, sessions)
    async with sessions.begin() as session:
        result = await refunds.adjust(
            session,
            org_id=org_id,
            key_id=key_id,
            amount_micros=body.amount_micros,
            reason=body.reason,
            adjustment_ref=idempotency_key,
            by_key_id=admin.key_id,
        )
    await refresh_cached_wallet(holds, result.wallet)
    a = result.adjustment
    if not result.replayed:
        metrics.adjustments.inc()
        log.info(
            "adjusted",
            extra={
                "adjustment_id": a.id,
                "org_id": a.org_id,
                "amount_micros": a.amount_micros,
                "by_key_id": admin.key_id,
            },
        )
    return AdjustResponse(
        id=a.id,
        org_id=a.org_id,
        key_id=a.key_id,
        amount_micros=a.amount_micros,
        reason=a.reason,
        balance_micros=result.wallet.balance_micros,
        replayed=result.replayed,
    )


@router.get("/admin/payment/package/list", response_model=PackageList)
async def list_packages(
    _admin: Principal = Depends(admin_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
) -> PackageList:
    async with sessions() as session:
        rows = await package_repository.list_packages(session, include_inactive=True)
    return PackageList(data=[PackageOut.of(p) for p in rows])


@router.post("/admin/payment/package/save", response_model=PackageOut)
async def save_package(
    body: PackageSaveRequest,
    admin: Principal = Depends(admin_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
) -> PackageOut:
    """Creates or replaces a package; payments already opened keep the terms they were sold at."""
    async with sessions.begin() as session:
        package = await package_repository.upsert(
            session,
            package_id=body.id,
            name=body.name,
            price_micros=body.price_micros,
            credits_micros=body.credits_micros,
            bonus_bps=body.bonus_bps,
            active=body.active,
            sort_order=body.sort_order,
        )
    log.info("credit package saved", extra={"package_id": package.id, "by_key_id": admin.key_id})
    return PackageOut.of(package)


def get_reconciler(request: Request) -> Reconciler:
    reconciler: Reconciler = request.app.state.reconciler
    return reconciler


@router.get("/admin/payment/reconcile", response_model=ReconcileResponse)
async def reconcile(
    _admin: Principal = Depends(admin_principal), reconciler: Reconciler = Depends(get_reconciler)
) -> ReconcileResponse:
    report = await reconciler.check()
    return ReconcileResponse(
        wallets_checked=report.wallets_checked, healthy=not report.mismatches, mismatches=report.mismatches
    )
