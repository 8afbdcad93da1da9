"""Bodies of the platform-admin payment routes: refunds, adjustments, packages, reconciliation."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from tollgate.billing.payments.arithmetic import BPS_DENOMINATOR
from tollgate.billing.wallets.reconcile import Mismatch
from tollgate.common.money import credits_to_micros

MAX_CREDITS = Decimal(1_000_000_000)


def _whole_micros(value: Decimal | None) -> Decimal | None:
    if value is not None and (value * 1_000_000) % 1 != 0:
        raise ValueError("must be a whole number of micro-credits (at most 6 decimals)")
    return value


class RefundRequest(BaseModel):
    payment_id: int = Field(gt=0)
    # money to return, in the payment's currency (credits for an admin recharge); all that is left if absent
    amount: Decimal | None = Field(default=None, gt=0, le=MAX_CREDITS)
    refund_id: str | None = Field(default=None, min_length=1, max_length=255)
    reason: str = Field(default="", max_length=500)

    @field_validator("amount")
    @classmethod
    def _whole(cls, value: Decimal | None) -> Decimal | None:
        return _whole_micros(value)

    @property
    def amount_micros(self) -> int | None:
        return None if self.amount is None else credits_to_micros(self.amount)


class RefundResponse(BaseModel):
    object: Literal["refund"] = "refund"
    id: int
    refund_ref: str
    payment_id: int
    org_id: str
    amount_micros: int  # money returned
    credits_micros: int  # credits taken from the wallet
    payment_status: str
    refunded_micros: int  # of the payment, in total
    balance_micros: int | None  # the wallet right after this refund (None if it moved no credits)
    replayed: bool


class AdjustRequest(BaseModel):
    api_key: str | None = Field(default=None, min_length=1, max_length=512)
    org_id: str | None = Field(default=None, min_length=1, max_length=255)
    amount: Decimal = Field(ge=-MAX_CREDITS, le=MAX_CREDITS, description="Credits, + adds, - takes away")
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("amount")
    @classmethod
    def _nonzero(cls, value: Decimal) -> Decimal:
        _whole_micros(value)
        if value == 0:
            raise ValueError("must not be zero")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> AdjustRequest:
        if (self.api_key is None) == (self.org_id is None):
            raise ValueError("give exactly one of api_key and org_id")
        return self

    @property
    def amount_micros(self) -> int:
        return credits_to_micros(self.amount)


class AdjustResponse(BaseModel):
    object: Literal["adjustment"] = "adjustment"
    id: int
    org_id: str
    key_id: int | None
    amount_micros: int
    reason: str
    balance_micros: int  # the wallet right after this adjustment
    replayed: bool


class PackageSaveRequest(BaseModel):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    name: str = Field(min_length=1, max_length=100)
    price: Decimal = Field(gt=0, le=Decimal(1_000_000))
    credits: Decimal | None = Field(default=None, gt=0, le=MAX_CREDITS, description="Default: the price")
    bonus_pct: Decimal = Field(default=Decimal(0), ge=0, le=100)
    active: bool = True
    sort_order: int = Field(default=0, ge=0, le=1_000_000)

    @field_validator("price", "credits")
    @classmethod
    def _whole(cls, value: Decimal | None) -> Decimal | None:
        return _whole_micros(value)

    @field_validator("bonus_pct")
    @classmethod
    def _basis_points(cls, value: Decimal) -> Decimal:
        if (value * 100) % 1 != 0:
            raise ValueError("at most 2 decimals (a whole number of basis points)")
        return value

    @property
    def bonus_bps(self) -> int:
        bps = int(self.bonus_pct * 100)
        assert 0 <= bps <= BPS_DENOMINATOR
        return bps

    @property
    def price_micros(self) -> int:
        return credits_to_micros(self.price)

    @property
    def credits_micros(self) -> int:
        return credits_to_micros(self.price if self.credits is None else self.credits)


class ReconcileResponse(BaseModel):
    object: Literal["reconciliation"] = "reconciliation"
    wallets_checked: int
    healthy: bool
    mismatches: list[Mismatch]
