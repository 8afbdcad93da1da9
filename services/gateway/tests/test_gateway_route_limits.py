"""Route families' own limits (limits/route_limits.py): the credit chat API's per-address minute,
IndoxRouter's per-key hour, and how the rate gate takes them with the key's own limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from test_gateway_rate_gate import REDIS_URL, principal

from tollgate.common.auth_client import RateLimits
from tollgate.common.errors import RateLimited
from tollgate.common.networks import parse_networks
from tollgate.gateway.limits.cells import RedisCells
from tollgate.gateway.limits.gate import RateGate
from tollgate.gateway.limits.leases import Limiter
from tollgate.gateway.limits.route_limits import HOUR_S, RouteLimits, client_address
from tollgate.gateway.limits.specs import MINUTE_S, Measure, Scope


def scope(peer: str = "10.1.2.3", forwarded: str | None = None) -> dict[str, object]:
    headers = [(b"host", b"gw")]
    if forwarded is not None:
        headers.append((b"x-forwarded-for", forwarded.encode()))
    return {"type": "http", "client": (peer, 5555), "headers": headers}


def test_the_address_is_the_peer_unless_it_is_a_trusted_proxy() -> None:
    proxies = parse_networks("10.0.0.0/8, 192.0.2.9")
    assert [str(n) for n in proxies] == ["10.0.0.0/8", "192.0.2.9/32"]
    forwarded = scope("10.1.2.3", forwarded="198.51.100.7, 10.0.0.9")
    assert client_address(forwarded) == "10.1.2.3"  # no proxy trusted: the header is ignored
    assert client_address(forwarded, proxies) == "198.51.100.7"  # the trusted hop 10.0.0.9 skipped
    # a client naming its own address through the proxy only adds hops to the left of its real one
    spoofed = scope("10.1.2.3", forwarded="203.0.113.66, 198.51.100.7")
    assert client_address(spoofed, proxies) == "198.51.100.7"
    # a peer that is not a trusted proxy cannot pick its address
    assert client_address(scope("198.51.100.50", forwarded="203.0.113.66"), proxies) == "198.51.100.50"
    assert client_address(scope("10.1.2.3"), proxies) == "10.1.2.3"  # no header: the peer
    assert client_address(scope("10.1.2.3", forwarded="10.0.0.7"), proxies) == "10.0.0.7"  # all trusted
    assert client_address({"type": "http", "headers": []}, proxies) == "unknown"
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/8, not-a-network")


def test_each_family_gets_its_documented_limit_and_zero_turns_it_off() -> None:
    limits = RouteLimits()
    [by_address] = limits.credit_chat(scope())
    assert (by_address.scope, by_address.subject, by_address.measure) == (
        Scope.IP,
        "10.1.2.3",
        Measure.REQUESTS,
    )
    assert (by_address.limit, by_address.period_s, by_address.name) == (60, MINUTE_S, "requests per minute")
    [hourly] = limits.indoxrouter(principal(key_id=42))
    assert (hourly.scope, hourly.subject, hourly.limit, hourly.period_s) == (Scope.KEY, "42", 3_600, HOUR_S)
    assert hourly.redis_key != limits.indoxrouter(principal(key_id=43))[0].redis_key
    off = RouteLimits(credit_chat_rpm_per_address=0, indoxrouter_requests_per_hour=0)
    assert off.credit_chat(scope()) == () and off.indoxrouter(principal()) == ()


@pytest.fixture
async def gate() -> AsyncIterator[RateGate]:
    redis = Redis.from_url(REDIS_URL)
    prefix = "test-route-limits"
    keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await redis.delete(*keys)
    yield RateGate(Limiter(RedisCells(redis, prefix=prefix), max_lease=4))
    await redis.aclose()


async def test_an_address_limit_is_shared_by_keys_and_taken_with_each_keys_own(gate: RateGate) -> None:
    route = RouteLimits(credit_chat_rpm_per_address=3)
    here, there = route.credit_chat(scope("192.0.2.1")), route.credit_chat(scope("192.0.2.2"))
    alice, bob = principal(key_id=1), principal(RateLimits(rpm=100), key_id=2)
    await gate.admit(alice, 0, gate.limits_of(alice), here)
    await gate.admit(bob, 0, gate.limits_of(bob), here)
    await gate.admit(alice, 0, gate.limits_of(alice), here)
    with pytest.raises(RateLimited, match="on this address: Limit 3"):
        await gate.admit(bob, 0, gate.limits_of(bob), here)  # bob's own 100 a minute are not the limit
    admitted = await gate.admit(bob, 0, gate.limits_of(bob), there)  # another address: its own minute
    assert {limit.scope for limit in admitted.limits} == {Scope.KEY, Scope.IP}
    assert admitted.subject != (await gate.admit(bob, 0, gate.limits_of(bob))).subject  # its own lease
