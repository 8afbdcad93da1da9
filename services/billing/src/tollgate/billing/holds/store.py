"""Billing's Redis state: cached wallets, limits and open holds, changed only through the Lua scripts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import cast

from redis.asyncio import Redis

from tollgate.billing.budgets.repository import LimitsSnapshot
from tollgate.billing.holds import limit_scripts, mark_scripts, reserve_scripts, scripts


class ReserveStatus(IntEnum):
    LIMITS_NOT_CACHED = -2
    NOT_CACHED = -1
    REFUSED = 0
    GRANTED = 1


# ReserveResponse.reason, by the script's reason code.
REASONS = {0: "", 1: "insufficient_credits", 2: "quota_exceeded", 3: "budget_exceeded"}


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """What a Reserve checks besides the wallet: the key's budgets and quota in the current periods."""

    key_id: int  # 0: no key (only the org's budgets apply)
    month: str  # "2026-11"
    day: str  # "2026-11-23"
    month_quota_micros: int = 0  # 0 = unlimited


@dataclass(frozen=True, slots=True)
class ReserveReply:
    status: ReserveStatus
    available_micros: int
    hold_micros: int = 0
    reason: str = ""
    balance_micros: int = 0
    quota_changed: bool = False
    headroom_micros: int = 0  # left under the tightest of wallet and limits after a new hold


class StockStatus(IntEnum):
    LIMITS_NOT_CACHED = -2
    NOT_CACHED = -1
    REFUSED = 0
    ALL_PLACED = 1
    NOT_STOCKABLE = 2


@dataclass(frozen=True, slots=True)
class StockReply:
    placed: int  # the first `placed` hold ids are held (and stockable)
    code: int  # a StockStatus
    reason: str = ""  # the refusal reason when REFUSED
    quota_changed: bool = False


@dataclass(frozen=True, slots=True)
class MarkRecord:
    """The gateway's mark of an answered request: its hold falls to `cost_micros`, and `payload`
    (an opaque string, the encoded HoldMark) is what the sweeper gets back if it is never settled."""

    org_id: str
    hold_id: str
    cost_micros: int
    payload: str


@dataclass(frozen=True, slots=True)
class SweptHold:
    """What the sweeper found at an expired hold: released (unmarked), gone, or marked (payload)."""

    org_id: str
    hold_id: str
    released: bool
    mark: str = ""  # the mark's payload when the hold was marked: kept, to be settled


@dataclass(frozen=True, slots=True)
class CachedWallet:
    balance_micros: int
    held_micros: int
    version: int

    @property
    def available_micros(self) -> int:
        return self.balance_micros - self.held_micros


@dataclass(frozen=True, slots=True)
class OrgSettlement:
    """What one org's settled batch changes in Redis: holds to drop, the DB's wallet state and the
    new totals of the spend counters the batch touched."""

    org_id: str
    hold_ids: Sequence[str]
    balance_micros: int | None  # None: no wallet row yet, leave the cache alone
    version: int
    spent: Mapping[tuple[int, str], int] = field(default_factory=dict)  # (key_id, period) -> total


_MEMBER_SEP = "\n"
MAX_ID_LENGTH = 256


def valid_id(value: str) -> bool:
    """An org or hold id the store can keep: 1-256 characters, none of them its member separator."""
    return bool(value) and len(value) <= MAX_ID_LENGTH and _MEMBER_SEP not in value


def scope_name(key_id: int) -> str:
    return "org" if key_id == 0 else f"k{key_id}"


def spent_field(key_id: int, period: str) -> str:
    return f"s:{scope_name(key_id)}:{period}"


def budget_field(key_id: int, period: str) -> str:
    return f"b:{scope_name(key_id)}:{'d' if period == 'daily' else 'm'}"


class HoldStore:
    def __init__(self, redis: Redis, *, prefix: str = "billing", wallet_ttl_seconds: int = 3600) -> None:
        self._redis = redis
        self._prefix = prefix
        self._wallet_ttl = wallet_ttl_seconds
        self._expiry_key = f"{prefix}:hold-expiry"
        # Registered once: each call is an EVALSHA, loading the script only if Redis lost it.
        self._reserve = redis.register_script(reserve_scripts.RESERVE)
        self._reserve_stock = redis.register_script(reserve_scripts.RESERVE_STOCK)
        self._release = redis.register_script(scripts.RELEASE)
        self._sync = redis.register_script(scripts.SYNC_WALLET)
        self._settle = redis.register_script(scripts.SETTLE)
        self._sync_limits = redis.register_script(limit_scripts.SYNC_LIMITS)
        self._mark = redis.register_script(mark_scripts.MARK)
        self._sweep_one = redis.register_script(mark_scripts.SWEEP_ONE)

    def wallet_key(self, org_id: str) -> str:
        return f"{self._prefix}:wallet:{{{org_id}}}"

    def holds_key(self, org_id: str) -> str:
        return f"{self._prefix}:holds:{{{org_id}}}"

    def limits_key(self, org_id: str) -> str:
        return f"{self._prefix}:limits:{{{org_id}}}"

    def marks_key(self, org_id: str) -> str:
        return f"{self._prefix}:marks:{{{org_id}}}"

    def _keys(self, org_id: str) -> list[str]:
        return [
            self.wallet_key(org_id),
            self.holds_key(org_id),
            self._expiry_key,
            self.limits_key(org_id),
            self.marks_key(org_id),
        ]

    @staticmethod
    def _member(org_id: str, hold_id: str) -> str:
        return f"{org_id}{_MEMBER_SEP}{hold_id}"

    async def reserve(
        self,
        org_id: str,
        hold_id: str,
        amount_micros: int,
        expires_at: float,
        *,
        limits: LimitCheck | None = None,
    ) -> ReserveReply:
        """Holds `amount_micros` on the wallet; with `limits`, also checks and caps by budgets/quota."""
        raw = await self._reserve(
            keys=self._keys(org_id),
            args=[
                hold_id,
                *self._reserve_args(amount_micros, expires_at, limits, self._member(org_id, hold_id)),
            ],
        )
        status, available, hold, reason, balance, quota_changed, headroom = (int(v) for v in raw)
        return ReserveReply(
            ReserveStatus(status),
            available,
            hold,
            REASONS.get(reason, ""),
            balance,
            bool(quota_changed),
            max(headroom, 0),  # -1: the hold was open already (RESERVE_STOCK counts it as placed)
        )

    async def reserve_stock(
        self,
        org_id: str,
        hold_ids: Sequence[str],
        amount_micros: int,
        expires_at: float,
        headroom: int,
        *,
        limits: LimitCheck | None = None,
    ) -> StockReply:
        """`reserve` for each hold id in turn, in one script, keeping only stockable holds."""
        args: list[str | int] = ["", *self._reserve_args(amount_micros, expires_at, limits, ""), headroom]
        for hold_id in hold_ids:
            args.extend((hold_id, self._member(org_id, hold_id)))
        raw = await self._reserve_stock(keys=self._keys(org_id), args=args)
        placed, code, reason, quota_changed = (int(v) for v in raw)
        return StockReply(placed, code, REASONS.get(reason, ""), bool(quota_changed))

    @staticmethod
    def _reserve_args(
        amount_micros: int, expires_at: float, limits: LimitCheck | None, member: str
    ) -> list[str | int]:
        """RESERVE's ARGV[2:9] (ARGV[1] is the hold id)."""
        check = limits or LimitCheck(0, "", "")
        return [
            amount_micros,
            int(expires_at),
            member,
            "1" if limits else "0",
            check.key_id,
            check.month,
            check.day,
            check.month_quota_micros,
        ]

    async def release(self, org_id: str, hold_id: str) -> bool:
        released = await self._release(keys=self._keys(org_id), args=[hold_id, self._member(org_id, hold_id)])
        return bool(released)

    async def sync_wallet(self, org_id: str, balance_micros: int, version: int) -> bool:
        applied = await self._sync(keys=self._keys(org_id), args=[balance_micros, version, self._wallet_ttl])
        return bool(applied)

    async def sync_limits(self, org_id: str, snap: LimitsSnapshot, *, init: bool) -> bool:
        """Loads (init) or refreshes an org's limits from a PostgreSQL snapshot; True if it loaded."""
        args: list[str | int] = [snap.budgets_version, self._wallet_ttl, "1" if init else "0"]
        args.append(len(snap.budgets))
        for key_id, period, limit in snap.budgets:
            args.extend((budget_field(key_id, period), limit))
        args.append(len(snap.spent))
        for (key_id, period), spent in snap.spent.items():
            args.extend((spent_field(key_id, period), spent))
        args.append(len(snap.quotas))
        for key_id, quota in snap.quotas.items():
            args.extend((f"q:{key_id}", quota))
        return bool(await self._sync_limits(keys=self._keys(org_id), args=args))

    async def settle(self, settlements: Sequence[OrgSettlement]) -> int:
        """Applies every org's settlement in one pipelined round trip; returns holds released."""
        if not settlements:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for s in settlements:
                args: list[str | int] = [
                    "" if s.balance_micros is None else s.balance_micros,
                    s.version,
                    self._wallet_ttl,
                    len(s.spent),
                ]
                for (key_id, period), total in s.spent.items():
                    args.extend((spent_field(key_id, period), total))
                for hold_id in s.hold_ids:
                    args.extend((hold_id, self._member(s.org_id, hold_id)))
                await self._settle(keys=self._keys(s.org_id), args=args, client=pipe)
            results = await pipe.execute()
        return sum(int(r) for r in results)

    async def mark(self, marks: Sequence[MarkRecord], expires_at: float) -> int:
        """Marks open holds with their requests' actual costs (one script per org, pipelined);
        a marked hold expires at `expires_at` unless settled before. Returns holds marked."""
        by_org: dict[str, list[MarkRecord]] = {}
        for m in marks:
            by_org.setdefault(m.org_id, []).append(m)
        if not by_org:
            return 0

        def args_of(org_id: str, records: list[MarkRecord]) -> list[str | int]:
            args: list[str | int] = [int(expires_at)]
            for m in records:
                args.extend((m.hold_id, self._member(org_id, m.hold_id), m.cost_micros, m.payload))
            return args

        if len(by_org) == 1:  # the common case: no pipeline (it costs more than the call it carries)
            [(org_id, records)] = by_org.items()
            return int(await self._mark(keys=self._keys(org_id), args=args_of(org_id, records)))
        async with self._redis.pipeline(transaction=False) as pipe:
            for org_id, records in by_org.items():
                await self._mark(keys=self._keys(org_id), args=args_of(org_id, records), client=pipe)
            results = await pipe.execute()
        return sum(int(r) for r in results)

    async def sweep_one(self, org_id: str, hold_id: str, retry_at: float) -> SweptHold:
        """An expired hold: released when unmarked; kept and rescheduled to `retry_at` when marked."""
        code, mark = await self._sweep_one(
            keys=self._keys(org_id), args=[hold_id, self._member(org_id, hold_id), int(retry_at)]
        )
        return SweptHold(org_id, hold_id, released=int(code) == 1, mark=str(mark) if int(code) == 2 else "")

    async def read_mark(self, org_id: str, hold_id: str) -> str | None:
        """A hold's mark as stored (for diagnostics and tests)."""
        value = await self._redis.hget(self.marks_key(org_id), hold_id)
        return None if value is None else str(value)

    async def read_wallet(self, org_id: str) -> CachedWallet | None:
        balance, held, version = await self._redis.hmget(
            self.wallet_key(org_id), ["balance", "held", "version"]
        )
        if balance is None:
            return None
        return CachedWallet(int(balance), int(held or 0), int(version or 0))

    async def read_limits(self, org_id: str) -> dict[str, str]:
        """The org's cached limits hash as it is (for diagnostics and tests)."""
        return cast(dict[str, str], await self._redis.hgetall(self.limits_key(org_id)))

    async def expired(self, now: float, limit: int = 500) -> list[tuple[str, str]]:
        """(org_id, hold_id) of holds whose expiry time has passed, oldest first."""
        members = await self._redis.zrangebyscore(self._expiry_key, "-inf", now, start=0, num=limit)
        out = []
        for raw in cast(list[str | bytes], members):
            member = raw.decode() if isinstance(raw, bytes) else raw
            org_id, _, hold_id = member.partition(_MEMBER_SEP)
            out.append((org_id, hold_id))
        return out

    async def ping(self) -> bool:
        return bool(await self._redis.ping())
