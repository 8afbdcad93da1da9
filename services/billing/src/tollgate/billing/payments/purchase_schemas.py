"""Bodies of the public credit routes: packages, purchase, provider webhooks (OpenAI-style objects)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tollgate.billing.payments.arithmetic import bonus_micros
from tollgate.billing.payments.models import CreditPackage, Payment
from tollgate.common.money import micros_to_credits


class PackageOut(BaseModel):
    object: Literal["credit_package"] = "credit_package"
    id: str
    name: str
    price: float  # in `currency`
    price_micros: int
    currency: str
    credits: float  # before the bonus
    credits_micros: int
    bonus_pct: float
    bonus_credits: float
    bonus_micros: int
    total_credits: float
    total_micros: int
    active: bool
    sort_order: int

    @classmethod
    def of(cls, p: CreditPackage) -> PackageOut:
        bonus = bonus_micros(p.credits_micros, p.bonus_bps)
        return cls(
            id=p.id,
            name=p.name,
            price=micros_to_credits(p.price_micros),
            price_micros=p.price_micros,
            currency=p.currency,
            credits=micros_to_credits(p.credits_micros),
            credits_micros=p.credits_micros,
            bonus_pct=p.bonus_bps / 100,
            bonus_credits=micros_to_credits(bonus),
            bonus_micros=bonus,
            total_credits=micros_to_credits(p.credits_micros + bonus),
            total_micros=p.credits_micros + bonus,
            active=p.active,
            sort_order=p.sort_order,
        )


class PackageList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PackageOut]


class PurchaseRequest(BaseModel):
    package_id: str = Field(min_length=1, max_length=64)


class CheckoutOut(BaseModel):
    provider: str
    provider_payment_id: str
    url: str | None


class PurchaseResponse(BaseModel):
    object: Literal["credit_purchase"] = "credit_purchase"
    id: int  # the payment id (GET /admin/payment/list, POST /admin/payment/refund)
    status: str
    package_id: str
    price: float
    price_micros: int
    currency: str
    credits_micros: int
    bonus_micros: int
    total_micros: int
    checkout: CheckoutOut

    @classmethod
    def of(cls, p: Payment) -> PurchaseResponse:
        return cls(
            id=p.id,
            status=p.status,
            package_id=p.package_id or "",
            price=micros_to_credits(p.paid_micros),
            price_micros=p.paid_micros,
            currency=p.currency,
            credits_micros=p.amount_micros,
            bonus_micros=p.bonus_micros,
            total_micros=p.granted_micros,
            checkout=CheckoutOut(
                provider=p.provider or "", provider_payment_id=p.provider_payment_id or "", url=p.checkout_url
            ),
        )


class WebhookResponse(BaseModel):
    received: bool = True
    outcome: str  # credited | failed | duplicate | ignored
    payment_id: int | None
