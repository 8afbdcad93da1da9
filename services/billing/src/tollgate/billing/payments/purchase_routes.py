"""Public credit routes: the packages on sale, buying one, and the providers' webhooks."""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, Depends, Header, Request
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.deps import current_principal, get_holds, get_metrics, get_sessions
from tollgate.billing.holds.service import HoldService
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.payments import package_repository, purchases
from tollgate.billing.payments.providers import PaymentProviders, get_providers
from tollgate.billing.payments.purchase_schemas import (
    PackageList,
    PackageOut,
    PurchaseRequest,
    PurchaseResponse,
    WebhookResponse,
)
from tollgate.billing.payments.service import refresh_cached_wallet
from tollgate.common.auth_client import Principal
from tollgate.common.errors import Forbidden, InvalidRequest, TollgateError

log = logging.getLogger(__name__)
router = APIRouter()
_tracer = trace.get_tracer("tollgate.billing.payments")
MAX_WEBHOOK_BYTES = 64 * 1024


@router.get("/v1/credits/packages", response_model=PackageList)
async def packages(
    _principal: Principal = Depends(current_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
) -> PackageList:
    async with sessions() as session:
        rows = await package_repository.list_packages(session, include_inactive=False)
    return PackageList(data=[PackageOut.of(p) for p in rows])


@router.post("/v1/credits/purchase", response_model=PurchaseResponse)
async def purchase(
    body: PurchaseRequest,
    principal: Principal = Depends(current_principal),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key", min_length=1, max_length=255),
    providers: PaymentProviders = Depends(get_providers),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
    metrics: BillingMetrics = Depends(get_metrics),
) -> PurchaseResponse:
    """Opens a pending payment for a package; credits arrive with the provider's webhook."""
    if "write" not in principal.permissions:
        raise Forbidden(
            "Buying credits needs a key with the 'write' permission.", code="insufficient_permissions"
        )
    provider = providers.default_provider()
    if idempotency_key is None:
        payment_ref = f"purchase:{uuid.uuid4().hex}"
    else:
        payment_ref = purchases.purchase_ref(principal.org_id, idempotency_key)
    async with sessions() as session:
        existing = await purchases.existing_purchase(session, payment_ref, body.package_id)
        if existing is not None:
            return PurchaseResponse.of(existing)
        package = await purchases.active_package(session, body.package_id)
    pending = await purchases.open_checkout(
        provider, package, payment_ref=payment_ref, org_id=principal.org_id, key_id=principal.key_id
    )
    async with sessions.begin() as session:
        payment = await purchases.record_pending(session, pending)
    metrics.purchases.inc()
    log.info(
        "credit purchase opened",
        extra={
            "payment_id": payment.id,
            "org_id": payment.org_id,
            "key_id": payment.key_id,
            "package_id": payment.package_id,
            "provider": payment.provider,
        },
    )
    return PurchaseResponse.of(payment)


@router.post("/v1/credits/webhooks/{provider}", response_model=WebhookResponse)
async def provider_webhook(
    provider: str,
    request: Request,
    providers: PaymentProviders = Depends(get_providers),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
    holds: HoldService = Depends(get_holds),
    metrics: BillingMetrics = Depends(get_metrics),
) -> WebhookResponse:
    """No API key: the provider's signature is the credential. Every refusal writes nothing."""
    handler = providers.get(provider)
    body = await request.body()
    with _tracer.start_as_current_span(
        "billing.payment_webhook", attributes={"payments.provider": handler.name}
    ):
        try:
            if len(body) > MAX_WEBHOOK_BYTES:
                raise InvalidRequest("The webhook body is too large.", code="invalid_payload")
            event = handler.parse_webhook(request.headers, body)
            async with sessions.begin() as session:
                outcome = await purchases.apply_event(session, handler.name, event)
        except TollgateError as exc:
            metrics.payment_webhooks.labels(handler.name, "rejected").inc()
            log.warning("payment webhook refused", extra={"provider": handler.name, "code": exc.code})
            raise
    metrics.payment_webhooks.labels(handler.name, outcome.outcome).inc()
    if outcome.outcome == "credited":
        await refresh_cached_wallet(holds, outcome.wallet)
        metrics.purchased_micros.inc(outcome.granted_micros)
        log.info(
            "payment credited",
            extra={
                "provider": handler.name,
                "payment_id": outcome.payment_id,
                "org_id": outcome.org_id,
                "granted_micros": outcome.granted_micros,
            },
        )
    return WebhookResponse(outcome=outcome.outcome, payment_id=outcome.payment_id)
