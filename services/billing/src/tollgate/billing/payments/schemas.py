"""Request and response bodies of the payment routes (the Bedrock-style gateway: recharge, payment list)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field, field_validator

from tollgate.billing.payments.models import Payment
from tollgate.common.money import MICROS_PER_CREDIT, credits_to_micros, micros_to_credits

MAX_RECHARGE_CREDITS = 1_000_000_000


class RechargeRequest(BaseModel):
    api_key: str = Field(min_length=1, max_length=512, description="The API key to credit")
    # Decimal, not float: 0.23 credits must become exactly 230000 micros.
    balance: Decimal = Field(gt=0, le=MAX_RECHARGE_CREDITS, description="Credits to add")

    @field_validator("balance")
    @classmethod
    def _at_least_one_micro(cls, value: Decimal) -> Decimal:
        if credits_to_micros(value) < 1:
            raise ValueError(f"must be at least {Decimal(1) / MICROS_PER_CREDIT} credits")
        return value

    @property
    def amount_micros(self) -> int:
        return credits_to_micros(self.balance)


class RechargeResponse(BaseModel):
    payment_id: int
    api_key_id: int
    org_id: str
    amount: float
    balance: float


class PaymentOut(BaseModel):
    id: int
    payment_ref: str
    org_id: str
    key_id: int | None
    amount: float  # credits granted before the bonus
    amount_micros: int
    method: str  # admin (a recharge) | package (a purchase through a provider)
    status: str  # pending | succeeded | failed | refunded
    provider: str | None
    provider_payment_id: str | None
    package_id: str | None
    paid_micros: int  # money paid, in `currency` micros (1 credit = 1 USD)
    currency: str
    bonus_micros: int
    refunded_micros: int
    created_at: datetime
    succeeded_at: datetime | None

    @classmethod
    def of(cls, p: Payment) -> PaymentOut:
        return cls(
            id=p.id,
            payment_ref=p.payment_ref,
            org_id=p.org_id,
            key_id=p.key_id,
            amount=micros_to_credits(p.amount_micros),
            amount_micros=p.amount_micros,
            method=p.method,
            status=p.status,
            provider=p.provider,
            provider_payment_id=p.provider_payment_id,
            package_id=p.package_id,
            paid_micros=p.paid_micros,
            currency=p.currency,
            bonus_micros=p.bonus_micros,
            refunded_micros=p.refunded_micros,
            created_at=p.created_at,
            succeeded_at=p.succeeded_at,
        )


class PaymentList(BaseModel):
    data: list[PaymentOut]
    total: int
