"""The local fast path: a busy subject's units are taken from Redis a few requests at a time.

A request that finds a live lease for its set of limits takes its cost from the lease in memory (no
round trip). Otherwise it takes a new lease from Redis (RedisCells.take): its own cost times the
lease size, from every limit at once. The size starts at one request and doubles while leases run
out before they expire (a busy key), up to `max_lease`; a lease that expires with units left gives
them back (one ADJUST, off the request's path) and halves the next size. An answer's true-up (its
actual tokens against the estimate) goes to the live lease, or to the one being taken, so a busy
key's true-ups reach Redis with its lease's leftovers. Leases are taken from the
shared cells before they are spent, so N replicas never admit more than the limit between them;
what they cost is the other way round: up to N times the lease size of units may sit unused in other
replicas for at most `lease_ttl_s` (docs/limits.md, "Several replicas").

A refusal is remembered until its retry time, for at most `refusal_memory_s`: a flood from a
limited key is refused in memory, and a limit whose units come back early (another request's
true-up) is asked again within that time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tollgate.gateway.limits.cells import RedisCells
from tollgate.gateway.limits.specs import Cost, Limit, Measure, Verdict
from tollgate.gateway.tasks import TaskSet

Clock = Callable[[], float]


@dataclass(slots=True)
class _Lease:
    limits: tuple[Limit, ...]
    requests: int  # units left in the lease, by measure
    tokens: int
    expires: float
    size: int  # requests' worth it was taken for
    verdict: Verdict  # what Redis said when it was taken (the headers' numbers)
    started: float


@dataclass(slots=True)
class _Refusal:
    limits: tuple[Limit, ...]
    at: float
    verdict: Verdict

    memory_s: float

    def until(self) -> float:
        return self.at + min(self.verdict.retry_after_s, self.memory_s)


class Limiter:
    def __init__(
        self,
        cells: RedisCells,
        *,
        max_lease: int = 32,
        lease_ttl_s: float = 1.0,
        refusal_memory_s: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._refusal_memory_s = refusal_memory_s
        self._cells = cells
        self._max_lease = max_lease
        self._ttl = lease_ttl_s
        self._clock = clock
        self._leases: dict[str, _Lease] = {}
        self._sizes: dict[str, int] = {}
        self._refusals: dict[str, _Refusal] = {}
        self._pending: dict[str, asyncio.Future[None]] = {}  # a lease being taken, by subject
        self._returning: dict[str, asyncio.Task[None]] = {}  # an ended lease's units going back
        # true-ups (limits, tokens) that came while the subject's next lease was being taken
        self._owed: dict[str, tuple[tuple[Limit, ...], int]] = {}
        self._tasks = TaskSet()

    async def acquire(self, subject: str, limits: Sequence[Limit], cost: Cost) -> Verdict:
        """Whether a request of `cost` may go now; `subject` names the set of limits (e.g. the key)."""
        limits = tuple(limits)
        while True:
            now = self._clock()
            refusal = self._refusals.get(subject)
            if refusal is not None:
                if refusal.until() > now and refusal.limits == limits:
                    was, elapsed = refusal.verdict, now - refusal.at
                    retry_s = max(was.retry_after_s - elapsed, 0.0)
                    return Verdict(
                        False, was.limit, 0, max(was.reset_s - elapsed, retry_s), retry_s, was.never
                    )
                del self._refusals[subject]
            lease = self._leases.get(subject)
            if lease is not None:
                if lease.limits == limits and lease.expires > now and _covers(lease, cost):
                    lease.requests -= cost.requests
                    lease.tokens -= cost.tokens
                    return _local_verdict(lease, now)
                self._end(subject, lease, now)
            # one round trip per subject at a time: concurrent requests wait for the lease it brings
            # (16 requests arriving as a lease runs out make one Redis call, not 16)
            pending = self._pending.get(subject)
            if pending is None:
                break
            await asyncio.shield(pending)
        fetched = self._pending[subject] = asyncio.get_running_loop().create_future()
        try:
            return await self._take(subject, limits, cost, now)
        finally:
            del self._pending[subject]
            self._settle_owed(subject)
            if not fetched.done():
                fetched.set_result(None)

    async def _take(self, subject: str, limits: tuple[Limit, ...], cost: Cost, now: float) -> Verdict:
        returning = self._returning.pop(subject, None)
        if returning is not None and not returning.done():
            await asyncio.shield(returning)  # what the last lease gave back counts for this take
        size = min(self._sizes.get(subject, 1), self._lease_cap(limits, cost))
        verdict = await self._cells.take(limits, Cost(cost.requests * size, cost.tokens * size))
        if not verdict.allowed and size > 1 and not verdict.never:
            size = 1  # the lease did not fit; the request alone may
            verdict = await self._cells.take(limits, cost)
        now = self._clock()
        if not verdict.allowed:
            self._sizes[subject] = 1
            if verdict.retry_after_s > 0:
                self._refusals[subject] = _Refusal(limits, now, verdict, self._refusal_memory_s)
            return verdict
        self._leases[subject] = _Lease(
            limits,
            cost.requests * (size - 1),
            cost.tokens * (size - 1),
            now + self._ttl,
            size,
            verdict,
            now,
        )
        return verdict

    def _lease_cap(self, limits: tuple[Limit, ...], cost: Cost) -> int:
        """A lease takes at most a tenth of any of its limits (and `max_lease` requests)."""
        cap = self._max_lease
        for limit in limits:
            units = cost.of(limit)
            if units:
                cap = min(cap, max(limit.limit // (10 * units), 1))
        return cap

    def _end(self, subject: str, lease: _Lease, now: float) -> None:
        """A lease is done with: the next size follows how fast it was spent; leftovers go back."""
        spent_fast = (lease.requests == 0 or lease.tokens < 0) and now - lease.started < self._ttl / 2
        size = self._sizes.get(subject, 1)
        self._sizes[subject] = min(size * 2, self._max_lease) if spent_fast else max(size // 2, 1)
        del self._leases[subject]
        returning = self._give_back(lease)
        if returning is not None:
            self._returning[subject] = returning

    def _give_back(self, lease: _Lease) -> asyncio.Task[None] | None:
        """Unused units go back; tokens that answers used beyond what was leased (true-ups that
        left the lease below zero) are taken on top."""
        units = [
            -(lease.requests if limit.measure is Measure.REQUESTS else lease.tokens) for limit in lease.limits
        ]
        if not any(units):
            return None
        return self._tasks.spawn(self._cells.adjust(lease.limits, units))

    def true_up(
        self, subject: str, limits: Sequence[Limit], estimated_tokens: int, actual_tokens: int
    ) -> None:
        """After the answer: the token limits take the actual usage instead of the estimate (more or
        less); off the request's path, never refused (the tokens were used)."""
        delta = actual_tokens - estimated_tokens
        if not delta:
            return
        if delta < 0:  # units came back: a remembered refusal may no longer hold
            self._refusals.pop(subject, None)
        token_limits = [limit for limit in limits if limit.measure is Measure.TOKENS]
        if not token_limits:
            return
        limit_set = tuple(limits)
        lease = self._leases.get(subject)
        if lease is not None and lease.limits == limit_set:
            # a busy key: the difference goes to its lease (settled with Redis when the lease ends),
            # so a true-up costs no round trip of its own
            lease.tokens -= delta
            return
        owed = self._owed.get(subject)
        if subject in self._pending and (owed is None or owed[0] == limit_set):
            # a busy key between two leases (at concurrency 16 answers keep coming while the next
            # lease is out at Redis): the difference waits for that lease instead
            self._owed[subject] = (limit_set, delta + (owed[1] if owed is not None else 0))
            return
        self._adjust_tokens(token_limits, delta)

    def _settle_owed(self, subject: str) -> None:
        """The true-ups that waited for a lease go to it, or to Redis when none was taken."""
        owed = self._owed.pop(subject, None)
        if owed is None:
            return
        limits, delta = owed
        lease = self._leases.get(subject)
        if lease is not None and lease.limits == limits:
            lease.tokens -= delta
        else:
            self._adjust_tokens([limit for limit in limits if limit.measure is Measure.TOKENS], delta)

    def _adjust_tokens(self, token_limits: list[Limit], delta: int) -> None:
        self._tasks.spawn(self._cells.adjust(token_limits, [delta] * len(token_limits)))

    def sweep(self) -> None:
        """Ends the expired leases of keys that went quiet, so their leftovers go back."""
        now = self._clock()
        for subject, lease in list(self._leases.items()):
            if lease.expires <= now:
                self._end(subject, lease, now)
        for subject, refusal in list(self._refusals.items()):
            if refusal.until() <= now:
                del self._refusals[subject]
        for subject, returning in list(self._returning.items()):
            if returning.done():
                del self._returning[subject]

    async def run_sweeper(self) -> None:
        while True:
            await asyncio.sleep(self._ttl)
            self.sweep()

    async def close(self) -> None:
        """Gives every live lease's leftovers back (shutdown), and waits for the adjustments."""
        now = self._clock()
        for subject, lease in list(self._leases.items()):
            self._end(subject, lease, now)
        await self._tasks.drain()


def _covers(lease: _Lease, cost: Cost) -> bool:
    return lease.requests >= cost.requests and lease.tokens >= cost.tokens


def _local_verdict(lease: _Lease, now: float) -> Verdict:
    """The headers' numbers for a request served from a lease: what Redis said when the lease was
    taken, plus what the lease still holds, with the reset moved on by the time since."""
    taken = lease.verdict
    left = lease.requests if taken.limit is None or taken.limit.measure is Measure.REQUESTS else lease.tokens
    return Verdict(True, taken.limit, taken.remaining + left, max(taken.reset_s - (now - lease.started), 0.0))
