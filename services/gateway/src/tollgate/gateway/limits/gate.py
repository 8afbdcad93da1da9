"""Where a priced request meets its rate limits: after the model is known and before the hold, so
a refused request holds nothing, reaches no provider and costs nothing.

The limits come with the principal (auth resolved the key's and its organisation's tier and
overrides, docs/limits.md): both sets are enforced, all or nothing, in one Limiter call. A request
takes one request and its token estimate (the prompt's bound plus the completion's `max_tokens`, as
OpenAI counts them), and once answered the token limits take its actual usage instead (true-up)."""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.common.auth_client import Principal, RateLimits
from tollgate.common.errors import RateLimited
from tollgate.gateway.limits.answer_headers import publish
from tollgate.gateway.limits.leases import Limiter
from tollgate.gateway.limits.specs import Cost, Limit, Scope, Tier, Verdict
from tollgate.gateway.metrics import GatewayMetrics

NO_LIMITS: tuple[Limit, ...] = ()


@dataclass(frozen=True, slots=True)
class Admitted:
    """What a request took, so its true-up can give back or take the difference."""

    subject: str
    limits: tuple[Limit, ...]
    estimated_tokens: int


class RateGate:
    def __init__(self, limiter: Limiter, metrics: GatewayMetrics | None = None) -> None:
        self._limiter = limiter
        self._refused = metrics.rate_limited if metrics is not None else None
        # the Limit objects of each principal's settings, built once (principals are cached too)
        self._sets: dict[tuple[int, str, RateLimits, RateLimits, tuple[Limit, ...]], tuple[Limit, ...]] = {}

    def limits_of(self, principal: Principal, model: tuple[Limit, ...] = NO_LIMITS) -> tuple[Limit, ...]:
        """The key's, its organisation's and the model's limits (`model`: the catalog entry's)."""
        key_limits, org_limits = principal.key_limits, principal.org_limits
        if not key_limits.limited and not org_limits.limited and not model:
            return NO_LIMITS
        index = (principal.key_id, principal.org_id, key_limits, org_limits, model)
        limits = self._sets.get(index)
        if limits is None:
            found = [*_tier(key_limits).limits(Scope.KEY, str(principal.key_id))] if principal.key_id else []
            found += _tier(org_limits).limits(Scope.ORG, principal.org_id)
            found += model
            if len(self._sets) > 100_000:  # settings change rarely; a bound all the same
                self._sets.clear()
            limits = self._sets[index] = tuple(found)
        return limits

    async def admit(
        self,
        principal: Principal,
        tokens: int,
        limits: tuple[Limit, ...],
        route: tuple[Limit, ...] = NO_LIMITS,
    ) -> Admitted:
        """Takes a request and `tokens` from `limits` (limits_of(principal)) and the route family's
        own `route` limits (limits/route_limits.py), all or nothing; raises RateLimited (429) when
        one of them refuses, and puts the X-RateLimit-* headers on the answer."""
        # one lease per set of limits: the key's (and its organisation's), per model when it has its
        # own, and per route limit (an address, the key's hour) when the route sets one
        model = next((limit.subject for limit in limits if limit.scope is Scope.MODEL), "")
        subject = f"{principal.key_id}:{principal.org_id}:{model}"
        if route:
            subject += "".join(f"|{limit.redis_key}" for limit in route)
            limits = limits + route
        verdict = await self._limiter.acquire(subject, limits, Cost(1, tokens))
        publish(verdict)
        if not verdict.allowed:
            if self._refused is not None and verdict.limit is not None:
                self._refused.labels(verdict.limit.scope.value, verdict.limit.measure.value).inc()
            raise RateLimited(refusal_message(verdict, tokens))
        return Admitted(subject, limits, tokens)

    def settle(self, admitted: Admitted | None, actual_tokens: int) -> None:
        """After the answer (or its failure, with 0): the token limits take what was actually used."""
        if admitted is not None:
            self._limiter.true_up(admitted.subject, admitted.limits, admitted.estimated_tokens, actual_tokens)


def _tier(limits: RateLimits) -> Tier:
    return Tier(limits.tier, limits.rpm or None, limits.tpm or None, limits.tpd or None)


def refusal_message(verdict: Verdict, tokens: int) -> str:
    limit = verdict.limit
    assert limit is not None  # a refusal always names the limit that refused
    scope = {Scope.ORG: "organization", Scope.MODEL: "model", Scope.IP: "address"}.get(limit.scope, "API key")
    if verdict.never:
        return (
            f"Request too large for {limit.name} on this {scope}: Limit {limit.limit}, Requested {tokens}. "
            "Lower max_tokens or the prompt's size."
        )
    return (
        f"Rate limit reached for {limit.name} on this {scope}: Limit {limit.limit}. "
        f"Please try again in {verdict.retry_after_s:.2f}s."
    )
