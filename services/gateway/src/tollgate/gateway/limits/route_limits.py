"""Limits a route family sets on its own, on top of the key's and organisation's tiers
(docs/limits.md, "Route limits"):

- the credit chat API documents "60 requests per minute per IP address": every request to
  `POST /api/v1/chat` from one client address takes from one limit, whichever key it carries;
- IndoxRouter documents limits "applied per API key and reset hourly": its routes take from a
  requests-per-hour limit of the key (GCRA like every limit: an hour's worth may come at once, then
  they return continuously rather than all at the top of the hour).

The client address is the socket's peer. Behind proxies (an ingress, a load balancer) that append
to X-Forwarded-For, list their networks in `GATEWAY_TRUSTED_PROXIES` (CIDRs): when the peer is one
of them, the header is read from the right, skipping trusted hops, and the first address that is not
a trusted proxy is the client's. A client that reaches the gateway directly cannot pick its address:
its peer is not trusted, so its header is ignored; and one that sends a forged header through the
proxy only adds addresses to the left of the one the proxy appended.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Scope as AsgiScope

from tollgate.common.auth_client import Principal
from tollgate.common.networks import Network, in_networks
from tollgate.gateway.limits.specs import MINUTE_S, Limit, Measure, Scope

HOUR_S = 3_600.0
NO_ROUTE_LIMITS: tuple[Limit, ...] = ()


def client_address(scope: AsgiScope, proxies: tuple[Network, ...] = ()) -> str:
    """The caller's address: the peer, or behind trusted proxies the last untrusted hop they saw."""
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    if not proxies or not in_networks(peer, proxies):
        return peer
    hops = [
        hop.strip()
        for name, value in scope.get("headers", ())
        if name == b"x-forwarded-for"
        for hop in value.decode("latin-1").split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not in_networks(hop, proxies):
            return hop
    return hops[0] if hops else peer


@dataclass(frozen=True, slots=True)
class RouteLimits:
    """`credit_chat_rpm_per_address` and `indoxrouter_requests_per_hour`; 0 turns one off.
    `trusted_proxies`: the networks whose X-Forwarded-For names the client (parse_networks)."""

    credit_chat_rpm_per_address: int = 60
    indoxrouter_requests_per_hour: int = 3_600
    trusted_proxies: tuple[Network, ...] = ()

    def credit_chat(self, scope: AsgiScope) -> tuple[Limit, ...]:
        rpm = self.credit_chat_rpm_per_address
        if not rpm:
            return NO_ROUTE_LIMITS
        address = client_address(scope, self.trusted_proxies)
        return (Limit(Scope.IP, address, Measure.REQUESTS, rpm, MINUTE_S, "requests per minute"),)

    def indoxrouter(self, principal: Principal) -> tuple[Limit, ...]:
        per_hour = self.indoxrouter_requests_per_hour
        if not per_hour:
            return NO_ROUTE_LIMITS
        subject = str(principal.key_id) if principal.key_id else f"org-{principal.org_id}"
        return (Limit(Scope.KEY, subject, Measure.REQUESTS, per_hour, HOUR_S, "requests per hour"),)
