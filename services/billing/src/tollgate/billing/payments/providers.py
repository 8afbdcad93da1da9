"""The payment-provider interface and the built-in `test` provider.

A provider does two things for billing: open a checkout for a pending payment, and turn one of
its webhook requests into a verified event (or refuse it). Billing's own rules (credit once per
provider payment id, refunds, the ledger) do not depend on which provider it is.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request
from pydantic import BaseModel, Field, ValidationError

from tollgate.billing.payments import signature
from tollgate.common.errors import InvalidRequest, NotFound, ServiceUnavailable

EVENT_SUCCEEDED = "payment.succeeded"
EVENT_FAILED = "payment.failed"


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    payment_ref: str
    org_id: str
    amount_micros: int  # what the buyer pays, in `currency`
    currency: str
    description: str


@dataclass(frozen=True, slots=True)
class Checkout:
    provider_payment_id: str
    url: str | None  # where the buyer pays; None for providers completed out of band


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    event_id: str
    event_type: str  # payment.succeeded | payment.failed | anything else (ignored)
    provider_payment_id: str
    amount_micros: int | None  # as the provider reports it, checked against the payment when given
    currency: str | None


class PaymentProvider(Protocol):
    name: str

    async def create_checkout(self, request: CheckoutRequest) -> Checkout: ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Verifies the request's signature, then parses it; raises InvalidRequest otherwise."""
        ...


class InvalidPayload(InvalidRequest):
    code = "invalid_payload"


class _EventData(BaseModel):
    payment_id: str = Field(min_length=1, max_length=255)
    amount_micros: int | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, min_length=1, max_length=16)


class _Event(BaseModel):
    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=100)
    data: _EventData


class TestProvider:
    """Built-in provider for development and tests: the checkout is completed by sending the
    signed `payment.succeeded` webhook yourself (body `{"id", "type", "data": {"payment_id",
    "amount_micros"?, "currency"?}}`, header `Tollgate-Signature`)."""

    name = "test"
    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self, secret: bytes, *, tolerance_seconds: int = 300, clock: Callable[[], float] = time.time
    ) -> None:
        if not secret:
            raise ValueError("the test provider needs a webhook secret")
        self._secret = secret
        self._tolerance = tolerance_seconds
        self._clock = clock

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        return Checkout(provider_payment_id=f"testpay_{uuid.uuid4().hex}", url=None)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        signature.verify(
            self._secret,
            headers.get(signature.SIGNATURE_HEADER.lower()),
            body,
            now=self._clock(),
            tolerance_seconds=self._tolerance,
        )
        try:
            event = _Event.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:
            raise InvalidPayload("The webhook body is not a valid payment event.") from exc
        return ProviderEvent(
            event.id, event.type, event.data.payment_id, event.data.amount_micros, event.data.currency
        )


class PaymentProviders:
    """The configured providers by name; purchases use `default`."""

    def __init__(self, providers: Mapping[str, PaymentProvider], default: str) -> None:
        self._providers = dict(providers)
        self.default = default

    def get(self, name: str) -> PaymentProvider:
        provider = self._providers.get(name)
        if provider is None:
            raise NotFound(f"No payment provider named {name!r} is configured.", code="unknown_provider")
        return provider

    def default_provider(self) -> PaymentProvider:
        provider = self._providers.get(self.default)
        if provider is None:
            raise ServiceUnavailable("No payment provider is configured.", code="payments_unavailable")
        return provider


def get_providers(request: Request) -> PaymentProviders:
    providers: PaymentProviders = request.app.state.payment_providers
    return providers
