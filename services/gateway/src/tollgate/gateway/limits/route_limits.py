"""Limits a route family sets on its own, on top of the key's and organisation's tiers
(docs/limits.md, "Route limits"):

- the credit chat API documents "60 requests per minute per IP address": every request to
  `POST /api/v1/chat` from one client address takes from one limit, whichever key it carries;
- IndoxRouter documents limits "applied per API key and reset hourly": its routes take from a
  requests-per-hour limit of the key (GCRA like every limit: an hour's worth may come at once, then
  they return continuously rather than all at the top of the hour).

The client address is the socket's peer; behind a proxy or an ingress that sets X-Forwarded-For,
`GATEWAY_TRUST_FORWARDED_FOR=true` takes the address the proxy saw instead. Only then: a client
talking to the gateway directly could otherwise pick its own address.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Scope as AsgiScope

from tollgate.common.auth_client import Principal
from tollgate.gateway.limits.specs import MINUTE_S, Limit, Measure, Scope

HOUR_S = 3_600.0
NO_ROUTE_LIMITS: tuple[Limit, ...] = ()


def client_address(scope: AsgiScope, trust_forwarded_for: bool) -> str:
    """The caller's address: the first hop of X-Forwarded-For when the proxy in front is trusted."""
    if trust_forwarded_for:
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                first = value.split(b",", 1)[0].strip()
                if first:
                    return first.decode("latin-1")
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


@dataclass(frozen=True, slots=True)
class RouteLimits:
    """`credit_chat_rpm_per_address` and `indoxrouter_requests_per_hour`; 0 turns one off."""

    credit_chat_rpm_per_address: int = 60
    indoxrouter_requests_per_hour: int = 3_600
    trust_forwarded_for: bool = False

    def credit_chat(self, scope: AsgiScope) -> tuple[Limit, ...]:
        rpm = self.credit_chat_rpm_per_address
        if not rpm:
            return NO_ROUTE_LIMITS
        address = client_address(scope, self.trust_forwarded_for)
        return (Limit(Scope.IP, address, Measure.REQUESTS, rpm, MINUTE_S, "requests per minute"),)

    def indoxrouter(self, principal: Principal) -> tuple[Limit, ...]:
        per_hour = self.indoxrouter_requests_per_hour
        if not per_hour:
            return NO_ROUTE_LIMITS
        subject = str(principal.key_id) if principal.key_id else f"org-{principal.org_id}"
        return (Limit(Scope.KEY, subject, Measure.REQUESTS, per_hour, HOUR_S, "requests per hour"),)
