"""The rules for API keys. Gets its collaborators in the constructor and the session per call;
never commits (the request or the gRPC call owns the transaction)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import Membership
from tollgate.auth.accounts.repository import AccountRepository
from tollgate.auth.accounts.service import create_personal_account
from tollgate.auth.keys.events import KeyChange
from tollgate.auth.keys.keygen import MAX_KEY_LENGTH, KeyHasher, generate_api_key
from tollgate.auth.keys.last_used import LastUsedRecorder
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.keys.principal import UNKNOWN_KEY, AuthResult, resolve
from tollgate.auth.keys.repository import KeyFilter, KeyRepository
from tollgate.auth.keys.schemas import ApplyKeyRequest, ListKeysQuery, UpdateKeyRequest
from tollgate.common.errors import Forbidden, NotFound
from tollgate.common.money import credits_to_micros


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class KeyView:
    key: ApiKey
    email: str | None


@dataclass(frozen=True, slots=True)
class Issued:
    view: KeyView
    api_key: str  # plaintext, returned to the caller once and never stored


class KeyNotFound(NotFound):
    code = "api_key_not_found"


class PlatformAdminRequired(Forbidden):
    code = "platform_admin_required"


MEMBER = "member"


class KeyService:
    def __init__(
        self,
        hasher: KeyHasher,
        last_used: LastUsedRecorder,
        clock: Callable[[], datetime] = utcnow,
        *,
        default_rate_tier: str = "",
    ) -> None:
        self._hasher = hasher
        self._last_used = last_used
        self._now = clock
        # AUTH_DEFAULT_RATE_TIER: the rate tier of keys that have none ("": none, not limited).
        self.default_rate_tier = default_rate_tier

    def hash_secret(self, material: str) -> str:
        """The same keyed hash as for keys, for other high-entropy secrets (the guard API's SecretKey)."""
        return self._hasher.hash(material)

    def secret_hashes(self, material: str) -> list[str]:
        """Its hash under the current pepper first, then under each previous one (a rotation's)."""
        return self._hasher.all_hashes(material)

    @property
    def pepper_id(self) -> str:
        return self._hasher.pepper_id

    async def authenticate(self, session: AsyncSession, api_key: str) -> AuthResult:
        """One index probe under the current pepper; only a miss during a pepper rotation costs a
        second (under the previous peppers). A key found under an old pepper, or with no pepper id
        yet, is moved to the current one on the spot (KeyRepository.rehash: once, whoever wins),
        so a rotation logs no key out and drains the old pepper as keys are used."""
        if not api_key or len(api_key) > MAX_KEY_LENGTH:
            return AuthResult(None, UNKNOWN_KEY)
        key_hash = self._hasher.hash(api_key)
        repo = KeyRepository(session)
        record = await repo.find_for_auth(key_hash, self.default_rate_tier)
        if record is None:
            previous = self._hasher.previous_hashes(api_key)
            if previous:
                # The current hash again too: a replica that moved this key between our two queries
                # has committed it under the current pepper, and this one statement sees either.
                hashes = [key_hash, *previous]
                record = await repo.find_for_auth_any(hashes, self.default_rate_tier)
        current = self._hasher.pepper_id
        if record is not None and (record.key_hash != key_hash or record.key_pepper_id != current):
            await repo.rehash(record.id, old_hash=record.key_hash, new_hash=key_hash, pepper_id=current)
        now = self._now()
        result = resolve(record, now)
        if result.principal is not None:
            self._last_used.touch(result.principal.key_id, now)
        return result

    async def apply(self, session: AsyncSession, req: ApplyKeyRequest, org_id: str | None = None) -> Issued:
        """The Bedrock-style gateway: a key stands for a person, so it comes with its user and a
        personal organisation. Applied by an organisation's admin (`org_id`), the new user joins that
        organisation as a member and the key belongs to it (its credits, its audit trail)."""
        email = req.email or None
        account = await create_personal_account(
            session, name=req.name, email=email, role=req.role, group_id=req.group_id
        )
        if org_id is not None:
            await AccountRepository(session).add(
                Membership(org_id=org_id, user_id=account.user.id, role=MEMBER)
            )
        plaintext = generate_api_key()
        key = await KeyRepository(session).add(
            ApiKey(
                key_hash=self._hasher.hash(plaintext),
                key_pepper_id=self._hasher.pepper_id,
                key_prefix=self._hasher.prefix(plaintext),
                name=req.name,
                org_id=org_id or account.org.id,
                user_id=account.user.id,
                role=req.role,
                group_id=req.group_id,
                month_quota_micros=credits_to_micros(req.month_quota) if req.month_quota else 0,
            )
        )
        return Issued(KeyView(key, email), plaintext)

    async def issue(
        self,
        session: AsyncSession,
        *,
        name: str,
        org_id: str,
        user_id: str,
        permissions: Sequence[str],
        lifetime: timedelta | None = None,
        group_id: int | None = None,
    ) -> Issued:
        """A key for an existing user (self-service: SloughGPT, the credit chat API); always role `user`."""
        plaintext = generate_api_key()
        key = await KeyRepository(session).add(
            ApiKey(
                key_hash=self._hasher.hash(plaintext),
                key_pepper_id=self._hasher.pepper_id,
                key_prefix=self._hasher.prefix(plaintext),
                name=name,
                org_id=org_id,
                user_id=user_id,
                role="user",
                group_id=group_id,
                permissions=list(permissions),
                expires_at=self._now() + lifetime if lifetime is not None else None,
            )
        )
        return Issued(KeyView(key, None), plaintext)

    async def update(
        self, session: AsyncSession, req: UpdateKeyRequest, org_id: str | None = None
    ) -> tuple[KeyView, KeyChange | None]:
        """`org_id`: an organisation admin's call, limited to that organisation's keys, and unable
        to change a key's role or group (which decide platform-wide powers and model access)."""
        key = await self._active_key(session, req.id, org_id)
        fields = req.model_fields_set
        if org_id is not None:
            if req.role is not None and req.role != key.role:
                raise PlatformAdminRequired("Changing a key's role needs a platform admin key.", param="role")
            if "group_id" in fields and req.group_id != key.group_id:
                raise PlatformAdminRequired(
                    "Moving a key to another group needs a platform admin key.", param="group_id"
                )
        before = (key.name, key.role, key.group_id, key.month_quota_micros)
        if req.name is not None:
            key.name = req.name
        if req.role is not None:
            key.role = req.role
        if "group_id" in fields:
            key.group_id = req.group_id
        if req.month_quota is not None:
            key.month_quota_micros = credits_to_micros(req.month_quota)
        changed = before != (key.name, key.role, key.group_id, key.month_quota_micros)
        await session.flush()
        email = await AccountRepository(session).email_of(key.user_id)
        change = KeyChange(key.id, key.key_hash, "updated", self._now()) if changed else None
        return KeyView(key, email), change

    async def revoke(self, session: AsyncSession, key_id: int, org_id: str | None = None) -> KeyChange:
        """Idempotent: revoking a revoked key keeps the first revocation time and announces it again,
        which also repairs a first announcement lost while Kafka was down. With `org_id`, another
        organisation's key answers exactly like a missing one."""
        key = await KeyRepository(session).get(key_id, for_update=True)
        if key is None or (org_id is not None and key.org_id != org_id):
            raise KeyNotFound(f"No API key with id {key_id}.", param="id")
        if key.revoked_at is None:
            key.revoked_at = self._now()
            await session.flush()
        return KeyChange(key.id, key.key_hash, "revoked", key.revoked_at)

    async def list(
        self, session: AsyncSession, query: ListKeysQuery, org_id: str | None = None
    ) -> tuple[list[KeyView], int]:
        flt = KeyFilter(q=query.q, name=query.name, group_id=query.group_id, role=query.role, org_id=org_id)
        rows, total = await KeyRepository(session).page(flt, limit=query.limit, offset=query.offset)
        return [KeyView(key, email) for key, email in rows], total

    async def org_of(self, session: AsyncSession, key_id: int) -> str | None:
        key = await session.get(ApiKey, key_id)  # usually already in the session: no query
        return key.org_id if key is not None else None

    async def active_key(self, session: AsyncSession, key_id: int, org_id: str | None = None) -> ApiKey:
        """An unrevoked key (locked); with `org_id`, only one of that organisation's."""
        return await self._active_key(session, key_id, org_id)

    async def _active_key(self, session: AsyncSession, key_id: int, org_id: str | None = None) -> ApiKey:
        key = await KeyRepository(session).get(key_id, for_update=True)
        if key is None or key.revoked_at is not None or (org_id is not None and key.org_id != org_id):
            raise KeyNotFound(f"No API key with id {key_id}.", param="id")
        return key
