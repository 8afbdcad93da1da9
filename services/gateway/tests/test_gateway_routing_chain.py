"""The pure parts of routing: the request's fallback fields, the configured ones, the cooldowns."""

from __future__ import annotations

import httpx
import pytest

from tollgate.common.errors import InvalidRequest, UpstreamTimeout
from tollgate.gateway.catalog.service import parse_config
from tollgate.gateway.catalog.snapshot import configured_fallbacks
from tollgate.gateway.routing.attempts import ChainFailed, Router
from tollgate.gateway.routing.breaker import Cooldowns
from tollgate.gateway.routing.chain import Link, take_fallbacks
from tollgate.gateway.routing.failures import timed_out

from gateway_fakes import entry  # isort: skip


def test_take_fallbacks_reads_litellm_and_openrouter_fields_and_removes_them() -> None:
    payload = {"model": "a", "fallbacks": ["b", "c"]}
    assert take_fallbacks(payload, "a") == ["b", "c"] and payload == {"model": "a"}
    payload = {"model": "a", "models": ["a", "b", "b"]}  # OpenRouter: the model itself may come first
    assert take_fallbacks(payload, "a") == ["b"] and "models" not in payload
    assert take_fallbacks({"models": ["a"]}, "a") is None
    for bad in ("b", [1], [""], {"b": 1}):
        with pytest.raises(InvalidRequest):
            take_fallbacks({"fallbacks": bad}, "a")


def test_configured_fallbacks_are_checked_and_kept_in_the_extra_config() -> None:
    config = parse_config({"base_url": "http://x/v1", "fallbacks": [" b ", "c"]}, "a", 4096)
    assert config.extra == {"fallbacks": ["b", "c"]}
    assert configured_fallbacks(config.extra) == ("b", "c") and configured_fallbacks({}) == ()
    for bad in ("b", [2], ["a"]):
        with pytest.raises(InvalidRequest):
            parse_config({"base_url": "http://x/v1", "fallbacks": bad}, "a", 4096)


def test_cooldowns_after_failures_in_a_row_and_back_after_the_cooldown() -> None:
    now = [0.0]
    cooldowns = Cooldowns(threshold=2, cooldown_s=10, clock=lambda: now[0])
    cooldowns.failed("a")
    cooldowns.succeeded("a")  # a success clears the count
    cooldowns.failed("a")
    assert not cooldowns.cooling("a")
    cooldowns.failed("a")
    assert cooldowns.cooling("a")
    client = httpx.AsyncClient()
    links = [entry("a", "m", client), entry("b", "m", client)]
    assert [e.name for e in cooldowns.usable(links, lambda e: e.name)] == ["b"]
    cooldowns.failed("b")
    cooldowns.failed("b")
    assert [e.name for e in cooldowns.usable(links, lambda e: e.name)] == ["a"]  # all cooling: the first
    now[0] = 10.5
    assert not cooldowns.cooling("a")  # back, on probation: one more failure and it cools down again
    cooldowns.failed("a")
    assert cooldowns.cooling("a")


def test_cooldowns_off_with_a_zero_threshold() -> None:
    cooldowns = Cooldowns(threshold=0)
    for _ in range(10):
        cooldowns.failed("a")
    assert not cooldowns.cooling("a")


async def test_every_attempt_fits_in_one_deadline() -> None:
    now = [0.0]
    seen: list[tuple[str, float]] = []

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    async def attempt(link: Link, left: float) -> None:
        seen.append((link.entry.name, left))
        now[0] += 3  # each attempt times out after 3 s
        raise timed_out()

    router = Router(Cooldowns(threshold=0), retries=1, backoff_s=0.05, clock=lambda: now[0], sleep=sleep)
    client = httpx.AsyncClient()
    links = [Link(entry(n, "m", client), None, None) for n in ("a", "b", "c")]  # type: ignore[arg-type]
    with pytest.raises(ChainFailed) as failed:
        await router.run(links, attempt, 5.0)
    assert seen == [("a", 5.0), ("a", pytest.approx(1.95))]  # b and c: no time left
    error = failed.value.error()
    assert isinstance(error, UpstreamTimeout) and "1 model tried (a), 2 attempts" in error.message
