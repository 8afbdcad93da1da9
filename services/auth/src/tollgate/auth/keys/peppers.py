"""Pepper rotation: which stored hashes are still under an old pepper (docs/operations.md, "Rotate
secrets").

API keys and guard secrets are stored only as HMAC(pepper, value), and the values themselves are
never kept, so no batch job can move a hash to a new pepper: each one moves when its key is next
presented (KeyService.authenticate, GuardService.check_pair). Removing a previous pepper from
AUTH_KEY_PREVIOUS_PEPPERS therefore invalidates every key still under it; `python -m
tollgate.auth.keys.peppers` says how many that would be, per pepper id.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.config import AuthSettings, key_peppers
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.keys.service import utcnow
from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.keyring import Keyring
from tollgate.common.logging import configure_logging

log = logging.getLogger(__name__)


async def label_unlabelled(session: AsyncSession, pepper_id: str) -> int:
    """At start, outside a rotation (no previous pepper), every usable hash is under the current
    pepper, so rows from before pepper ids were recorded get its id in one statement instead of
    one write per key on the hot path. Never run during a rotation: those rows could be under
    either pepper there, and are labelled on use instead. Returns how many rows it labelled."""
    keys = await session.execute(
        update(ApiKey).where(ApiKey.key_pepper_id.is_(None)).values(key_pepper_id=pepper_id)
    )
    secrets = await session.execute(
        update(ApiKey)
        .where(ApiKey.secret_hash.is_not(None), ApiKey.secret_pepper_id.is_(None))
        .values(secret_pepper_id=pepper_id)
    )
    return int(getattr(keys, "rowcount", 0) or 0) + int(getattr(secrets, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class PepperCounts:
    """Usable (unrevoked, unexpired) keys and their guard secrets, by the pepper their hash is under;
    None is a hash from before pepper ids were recorded."""

    keys: dict[str | None, int]
    secrets: dict[str | None, int]

    def not_current(self, current_id: str) -> int:
        return sum(n for pid, n in self.keys.items() if pid != current_id) + sum(
            n for pid, n in self.secrets.items() if pid != current_id
        )


async def count_by_pepper(session: AsyncSession, now: datetime) -> PepperCounts:
    usable = [ApiKey.revoked_at.is_(None), or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now)]
    keys = await session.execute(
        select(ApiKey.key_pepper_id, func.count()).where(*usable).group_by(ApiKey.key_pepper_id)
    )
    with_secret = func.count(case((ApiKey.secret_hash.is_not(None), 1)))
    secrets = await session.execute(
        select(ApiKey.secret_pepper_id, with_secret).where(*usable).group_by(ApiKey.secret_pepper_id)
    )
    return PepperCounts(
        keys={pid: int(n) for pid, n in keys.all()},
        secrets={pid: int(n) for pid, n in secrets.all() if n},
    )


def report(counts: PepperCounts, peppers: Keyring) -> str:
    """The command's answer: one line per pepper, then the verdict for dropping the previous ones."""
    previous = list(peppers.by_id())[1:]
    names = {peppers.current_id: "current"}
    names |= {pid: f"AUTH_KEY_PREVIOUS_PEPPERS[{n}]" for n, pid in enumerate(previous, start=1)}
    lines = []
    for pid in sorted(set(counts.keys) | set(counts.secrets), key=lambda p: (p is None, p or "")):
        name = (
            names.get(pid, "not listed: these no longer verify") if pid else "unlabelled (from before 0007)"
        )
        lines.append(
            f"pepper {pid or '-'} ({name}): {counts.keys.get(pid, 0)} keys, "
            f"{counts.secrets.get(pid, 0)} guard secrets"
        )
    remaining = counts.not_current(peppers.current_id)
    verdict = "dropping the previous peppers now invalidates them" if remaining else "safe to drop them"
    lines.append(f"{remaining} usable keys or secrets are not under the current pepper; {verdict}")
    return "\n".join(lines)


async def _status() -> int:
    settings = AuthSettings()
    configure_logging("auth-peppers", settings.log_level)
    peppers = key_peppers(settings)
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            counts = await count_by_pepper(session, utcnow())
    finally:
        await engine.dispose()
    print(report(counts, peppers))
    return counts.not_current(peppers.current_id)


def main() -> None:
    """Exit 0 when every usable key and secret is under the current pepper, 1 otherwise."""
    remaining = asyncio.run(_status())
    raise SystemExit(1 if remaining else 0)


if __name__ == "__main__":
    main()
