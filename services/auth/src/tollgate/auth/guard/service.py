"""The guard API: a key plus its secondary secret authenticates a client that runs models
itself, and that client reports its usage so billing and analytics charge and count it like
gateway traffic. Gets the session per call and never commits."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.grants.service import ModelGrants
from tollgate.auth.guard.repository import GuardRepository
from tollgate.auth.guard.schemas import LogUsageRequest
from tollgate.auth.guard.usage import (
    MAX_IDEMPOTENCY_KEY,
    RecordSender,
    event_id_for,
    same_report,
    usage_headers,
    usage_recorded,
)
from tollgate.auth.keys.keygen import MAX_KEY_LENGTH
from tollgate.auth.keys.service import KeyNotFound, KeyService
from tollgate.common.auth_client import Principal
from tollgate.common.errors import (
    Forbidden,
    InvalidRequest,
    ServiceUnavailable,
    TollgateError,
    Unauthenticated,
)
from tollgate.common.kafka import TOPIC_USAGE
from tollgate.contracts.v1 import events_pb2

SECRET_SCHEME = "tgs_"  # tells a secret from a key at a glance (and to secret scanners)
SECRET_RANDOM_BYTES = 30  # 240 bits, like keys: a keyed fast hash is safe to store


def _utcnow() -> datetime:
    return datetime.now(UTC)


def generate_secret() -> str:
    return SECRET_SCHEME + secrets.token_urlsafe(SECRET_RANDOM_BYTES)


def key_from_authorization(value: str | None) -> str | None:
    """The guard API sends the bare key (`Authorization: sk-…`); `Bearer <key>` is accepted too."""
    if not value or not value.strip():
        return None
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip() or None
    return value.strip()


class BadPair(Unauthenticated):
    code = "invalid_credentials"


class ModelNotAllowed(Forbidden):
    code = "model_not_allowed"


class IdempotencyKeyReused(TollgateError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "idempotency_key_reused"


class GuardService:
    def __init__(
        self,
        keys: KeyService,
        grants: ModelGrants,
        sender: RecordSender,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._keys = keys
        self._grants = grants
        self._sender = sender
        self._now = clock

    async def issue_secret(
        self, session: AsyncSession, key_id: int, org_id: str | None = None
    ) -> tuple[str, bool]:
        """A new secret for an active key, replacing any earlier one (rotation). Returns the
        plaintext (shown once) and whether an earlier secret was replaced. With `org_id` (an
        organisation admin), another organisation's key answers like a missing one."""
        repo = GuardRepository(session)
        key = await repo.active_key_for_update(key_id)
        if key is None or (org_id is not None and key.org_id != org_id):
            raise KeyNotFound(f"No API key with id {key_id}.", param="id")
        rotated = key.secret_hash is not None
        plaintext = generate_secret()
        key.secret_hash = self._keys.hash_secret(plaintext)
        key.secret_pepper_id = self._keys.pepper_id
        await session.flush()
        return plaintext, rotated

    async def check_pair(
        self, session: AsyncSession, authorization: str | None, secret: str | None, org: str | None
    ) -> Principal:
        """One answer for every bad pair (unknown, revoked or expired key, no secret issued,
        wrong or missing secret): a caller learns nothing about which half was wrong."""
        api_key = key_from_authorization(authorization)
        secret = (secret or "").strip()
        if not api_key or not secret or len(secret) > MAX_KEY_LENGTH:
            raise BadPair("Send `Authorization: <API key>` and `SecretKey: <secret>`.")
        result = await self._keys.authenticate(session, api_key)
        principal = result.principal
        repo = GuardRepository(session)
        stored, stored_pepper = await repo.secret_hash(principal.key_id) if principal else (None, None)
        # compare_digest runs whatever the key lookup found, so timing says little about it; during a
        # pepper rotation the secret may still be hashed under a previous pepper.
        candidates = self._keys.secret_hashes(secret)  # the current pepper's first
        matched = [h for h in candidates if hmac.compare_digest(stored or "", h)]
        if principal is None or stored is None or not matched:
            raise BadPair("Invalid API key or secret key.")
        current = candidates[0]
        if stored != current or stored_pepper != self._keys.pepper_id:  # an old pepper's, or unlabelled
            await repo.rehash_secret(
                principal.key_id, old_hash=stored, new_hash=current, pepper_id=self._keys.pepper_id
            )
        if org and org.strip() and org.strip() != principal.org_id:
            raise Forbidden("An API key acts only in its own organisation.", code="organization_mismatch")
        return await self._grants.restrict(session, principal)

    @staticmethod
    def require_model(principal: Principal, model: str) -> None:
        if not principal.may_use(model):
            raise ModelNotAllowed(f"This API key may not use the model {model!r}.", param="model")

    async def usage_report(
        self,
        session: AsyncSession,
        principal: Principal,
        body: LogUsageRequest,
        idempotency_key: str | None,
    ) -> tuple[str, bytes]:
        """The event id and the serialized UsageRecorded that log-usage publishes. With an
        Idempotency-Key, the first attempt's report is kept (`guard_usage_reports`, written in the
        caller's transaction, which must commit before publishing) and every retry gets its bytes
        back, its time included: all copies of the event are the same, so billing settles it once
        in one day partition and analytics counts it once (docs/identity.md, "Idempotency"). A retry
        whose report differs from the first one is refused (409)."""
        idem = (idempotency_key or "").strip() or None
        if idem is not None and len(idem) > MAX_IDEMPOTENCY_KEY:
            raise InvalidRequest("Idempotency-Key is too long.", param="Idempotency-Key")
        self.require_model(principal, body.model)
        event_id = event_id_for(principal.key_id, idem)
        event = usage_recorded(
            event_id,
            principal,
            model=body.model,
            tokens_in=body.input_tokens,
            tokens_out=body.output_tokens,
            total_cost=body.total_cost,
            now=self._now(),
        )
        value = event.SerializeToString()
        if idem is None:
            return event_id, value  # a new event every call: nothing to keep
        kept = await GuardRepository(session).first_report(event_id, principal.key_id, value)
        if kept != value and not same_report(events_pb2.UsageRecorded.FromString(kept), event):
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used for a different usage report.", param="Idempotency-Key"
            )
        return event_id, kept

    async def publish_usage(self, principal: Principal, value: bytes) -> None:
        """Publishes a report from `usage_report`; raises 503 when Kafka did not acknowledge it, so
        the client retries (with the same Idempotency-Key: the same event, charged once)."""
        sent = await self._sender.send_record(
            TOPIC_USAGE,
            value,
            key=principal.org_id.encode(),  # usage.v1 is keyed by organisation
            headers=usage_headers(),
        )
        if not sent:
            raise ServiceUnavailable(
                "Usage could not be recorded right now; retry with the same Idempotency-Key.",
                code="usage_unavailable",
            )
