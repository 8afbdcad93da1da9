"""The operator's admin key (ADMIN_API_KEY), ensured at every start."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import SYSTEM_ORG_ID
from tollgate.auth.accounts.repository import AccountRepository
from tollgate.auth.keys.events import KeyChange
from tollgate.auth.keys.keygen import KeyHasher
from tollgate.auth.keys.repository import KeyRepository

log = logging.getLogger(__name__)

BOOTSTRAP_KEY_NAME = "bootstrap-admin"
MIN_RECOMMENDED_LENGTH = 24


async def ensure_bootstrap_admin(
    session: AsyncSession, hasher: KeyHasher, api_key: str, now: datetime
) -> list[KeyChange]:
    """Upserts the key by hash (idempotent, safe for replicas starting together) and revokes earlier
    bootstrap keys, so rotating ADMIN_API_KEY retires the old one. Returns those revocations, for
    the caller to announce after its commit. Never logs the key."""
    if len(api_key) < MIN_RECOMMENDED_LENGTH:
        log.warning("ADMIN_API_KEY is short; use a long random value", extra={"length": len(api_key)})
    await AccountRepository(session).ensure_organization(SYSTEM_ORG_ID, "system", personal=False)
    keys = KeyRepository(session)
    key_hash = hasher.hash(api_key)
    # During a pepper rotation the key's row may still carry its hash under a previous pepper: move
    # it (the same key, id and audit trail) rather than insert a new row and revoke the old one.
    for old_hash in hasher.previous_hashes(api_key):
        old = await keys.get_by_hash(old_hash)
        if old is not None:
            await keys.rehash(old.id, old_hash=old_hash, new_hash=key_hash, pepper_id=hasher.pepper_id)
    await keys.insert_if_absent(
        key_hash=key_hash,
        key_pepper_id=hasher.pepper_id,
        key_prefix=hasher.prefix(api_key),
        name=BOOTSTRAP_KEY_NAME,
        org_id=SYSTEM_ORG_ID,
        role="admin",
    )
    current = await keys.get_by_hash(key_hash)
    if current is None:  # pragma: no cover - the insert above or an earlier one created it
        raise RuntimeError("bootstrap admin key missing after upsert")
    if current.revoked_at is not None:
        # A revoked key stays revoked: it was revoked for a reason (a leak?). Rotate ADMIN_API_KEY.
        log.warning("the key in ADMIN_API_KEY was revoked; set a new one", extra={"key_id": current.id})
    elif current.role != "admin":
        log.warning("the key in ADMIN_API_KEY is not an admin key", extra={"key_id": current.id})
    changes = []
    for old in await keys.active_named(SYSTEM_ORG_ID, BOOTSTRAP_KEY_NAME):
        if old.id != current.id:
            old.revoked_at = now
            changes.append(KeyChange(old.id, old.key_hash, "revoked", now))
    await session.flush()
    if changes:
        log.info("revoked earlier bootstrap admin keys", extra={"key_ids": [c.key_id for c in changes]})
    return changes
