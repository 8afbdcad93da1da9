"""The rate gate (limits/gate.py) and the answer headers' middleware (limits/answer_headers.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tollgate.common.auth_client import Principal, RateLimits
from tollgate.common.errors import RateLimited
from tollgate.gateway.catalog.snapshot import model_limits
from tollgate.gateway.limits.answer_headers import AnswerHeaders, publish
from tollgate.gateway.limits.cells import RedisCells
from tollgate.gateway.limits.gate import RateGate
from tollgate.gateway.limits.leases import Limiter
from tollgate.gateway.limits.specs import Measure, Scope, Verdict
from tollgate.gateway.metrics import GatewayMetrics

REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:26479/0")


def principal(key: RateLimits = RateLimits(), org: RateLimits = RateLimits(), key_id: int = 7) -> Principal:
    return Principal(
        key_id=key_id,
        org_id="org_1",
        user_id="u",
        role="user",
        group_id=0,
        permissions=("read", "write"),
        key_prefix="tg_x",
        expires_at_unix=0,
        month_quota_micros=0,
        key_limits=key,
        org_limits=org,
    )


@pytest.fixture
async def gate() -> AsyncIterator[RateGate]:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"test-gate:{uuid.uuid4().hex}"
    yield RateGate(Limiter(RedisCells(redis, prefix=prefix), max_lease=1))
    keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def test_a_principal_without_limits_has_none_and_settings_become_limits() -> None:
    gate = RateGate(Limiter(RedisCells(Redis.from_url(REDIS_URL))))
    assert gate.limits_of(principal()) == ()
    limits = gate.limits_of(principal(RateLimits("free", rpm=100, tpd=10_000), RateLimits(rpm=1_000)))
    assert [(x.scope, x.subject, x.measure, x.limit) for x in limits] == [
        (Scope.KEY, "7", Measure.REQUESTS, 100),
        (Scope.KEY, "7", Measure.TOKENS, 10_000),
        (Scope.ORG, "org_1", Measure.REQUESTS, 1_000),
    ]
    # built once per settings, and an access token (key_id 0) has its organisation's only
    assert gate.limits_of(principal(RateLimits("free", rpm=100, tpd=10_000), RateLimits(rpm=1_000))) is limits
    token = gate.limits_of(principal(RateLimits(rpm=5), RateLimits(rpm=1_000), key_id=0))
    assert [x.scope for x in token] == [Scope.ORG]


def test_a_models_own_limits_join_the_keys() -> None:
    gate = RateGate(Limiter(RedisCells(Redis.from_url(REDIS_URL))))
    model = model_limits("gpt-x", {"rpm": 50, "tpd": None, "fallbacks": []})
    assert [(x.scope, x.subject, x.measure, x.limit) for x in model] == [
        (Scope.MODEL, "gpt-x", Measure.REQUESTS, 50)
    ]
    assert gate.limits_of(principal(), model) == model  # an unlimited key still meets the model's limit
    both = gate.limits_of(principal(RateLimits(rpm=5)), model)
    assert [x.scope for x in both] == [Scope.KEY, Scope.MODEL]
    assert model_limits("m", {"rpm": 0, "tpm": True, "tpd": "9"}) == ()


async def test_the_gate_refuses_naming_the_limit_and_the_scope(gate: RateGate) -> None:
    who = principal(RateLimits(rpm=100), RateLimits(rpm=1))
    limits = gate.limits_of(who)
    await gate.admit(who, 10, limits)
    with pytest.raises(RateLimited) as refused:
        await gate.admit(who, 10, limits)
    assert refused.value.status_code == 429 and refused.value.code == "rate_limit_exceeded"
    assert "requests per minute on this organization: Limit 1" in refused.value.message
    big = principal(RateLimits(tpm=100), key_id=8)
    with pytest.raises(RateLimited) as too_large:
        await gate.admit(big, 101, gate.limits_of(big))
    assert "too large" in too_large.value.message


async def test_the_middleware_adds_what_the_gate_published() -> None:
    sent: list[dict[str, Any]] = []
    verdict = Verdict(
        True,
        RateGate(Limiter(RedisCells(Redis.from_url(REDIS_URL)))).limits_of(principal(RateLimits(rpm=10)))[0],
        9,
        6.0,
    )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        publish(verdict)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"x")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await AnswerHeaders(app)({"type": "http"}, None, send)
    headers = dict(sent[0]["headers"])
    assert headers[b"x-ratelimit-limit"] == b"10" and headers[b"x-ratelimit-remaining"] == b"9"
    assert headers[b"content-type"] == b"x"

    async def quiet(scope: Any, receive: Any, send: Any) -> None:  # a request no gate saw
        await send({"type": "http.response.start", "status": 200, "headers": []})

    sent.clear()
    await AnswerHeaders(quiet)({"type": "http"}, None, send)
    assert sent[0]["headers"] == []
    publish(verdict)  # outside a request: nothing to fill, no error


async def test_refusals_are_counted_by_the_refusing_limits_scope_and_measure() -> None:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"test-gate:{uuid.uuid4().hex}"
    registry = CollectorRegistry()
    gate = RateGate(Limiter(RedisCells(redis, prefix=prefix), max_lease=1), GatewayMetrics(registry))
    try:
        who = principal(RateLimits(rpm=100), RateLimits(rpm=1))
        await gate.admit(who, 10, gate.limits_of(who))
        with pytest.raises(RateLimited):
            await gate.admit(who, 10, gate.limits_of(who))
        big = principal(RateLimits(tpm=100), key_id=8)
        with pytest.raises(RateLimited):
            await gate.admit(big, 101, gate.limits_of(big))
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    counted = {"scope": "org", "measure": "requests"}
    assert registry.get_sample_value("gateway_rate_limited_total", counted) == 1
    assert registry.get_sample_value("gateway_rate_limited_total", {"scope": "key", "measure": "tokens"}) == 1
