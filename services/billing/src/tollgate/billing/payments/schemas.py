"""Request and response bodies of the payment routes (seed 004: recharge, payment list)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field, field_validator

from tollgate.common.money import MICROS_PER_CREDIT, credits_to_micros

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
    amount: float
    amount_micros: int
    method: str
    created_at: datetime


class PaymentList(BaseModel):
    data: list[PaymentOut]
    total: int
