"""The pipeline's collaborators, as it sees them (main.py wires the real ones, tests pass fakes),
and the one refusal it raises for the upstream."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from tollgate.common.auth_client import Principal
from tollgate.common.errors import TollgateError
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.completions.billing import Reserver
from tollgate.gateway.providers.base import Provider
from tollgate.gateway.usage.events import OutgoingEvent


class Principals(Protocol):
    async def get(self, api_key: str) -> Principal: ...


class Catalog(Protocol):
    def get(self, name: str) -> CatalogEntry | None: ...
    def entries(self) -> list[CatalogEntry]: ...


class Billing(Reserver, Protocol):
    async def release(self, org_id: str, hold_id: str) -> bool: ...


class Emitter(Protocol):
    """usage/recorder.py: `answered` marks a charged request's hold and queues its event; `emit`
    queues the event of a request that charged nothing."""

    def answered(self, event: OutgoingEvent) -> Awaitable[None] | None: ...
    def emit(self, event: OutgoingEvent) -> None: ...


class UpstreamRefused(TollgateError):
    """The provider refused the request for a reason the caller can fix (its 4xx passes through).
    Route families with an envelope of their own render `message`; /v1/chat/completions passes the
    provider's body on in OpenAI's envelope (`provider.error_body`)."""

    error_type = "invalid_request_error"
    code = "provider_error"

    def __init__(self, status_code: int, body: bytes, provider: Provider) -> None:
        super().__init__(provider.error_message(status_code, body))
        self.status_code = status_code
        self.body = body
        self.provider = provider

    def openai_body(self) -> bytes:
        return self.provider.error_body(self.status_code, self.body)
