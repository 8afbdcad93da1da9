"""Rate limits enforced by the gateway on the real stack (issue 12): a key's or its organisation's
limits (set by an admin, carried by the principal) refuse the request over them with 429 in each
route family's envelope, before any hold or upstream call; every answer of a limited key carries the
X-RateLimit-* headers; token limits count the estimate first and the actual usage after the answer."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tollgate.devstack.testing import PRICE_IN, PRICE_OUT, Account, balance_micros, register_model, wait_until

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-retry-after")


@pytest.fixture(scope="module")
def model(admin: httpx.Client, sim_url: str) -> tuple[str, str]:
    """A model of its own (so the simulator's per-model count is this module's alone)."""
    upstream = f"sim-limits-{uuid.uuid4().hex[:8]}"
    name = f"limited-{uuid.uuid4().hex[:8]}"
    register_model(admin, name, upstream, sim_url)
    return name, upstream


@pytest.fixture(scope="module")
def indoxrouter_provider(admin: httpx.Client, sim_url: str) -> str:
    """IndoxRouter names a model by provider and model: a catalog model "<provider>/chat"."""
    provider = f"limprov{uuid.uuid4().hex[:6]}"
    register_model(admin, f"{provider}/chat", "sim-model", sim_url)
    return provider


def sim_calls(sim_url: str, upstream: str) -> int:
    return int(httpx.get(f"{sim_url}/_sim/stats", timeout=5).json()["by_model"].get(upstream, 0))


def limited_account(new_account: Callable[..., Account], admin: httpx.Client, **limits: Any) -> Account:
    """A funded key whose limits are set before its first request (no principal cached yet)."""
    account = new_account(credits=1)
    resp = admin.post("/admin/api-key/limits", json={"id": account.key_id, **limits})
    assert resp.status_code == 200, resp.text
    return account


def chat(gateway_url: str, key: str, model: str, **extra: Any) -> httpx.Response:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 8,
        **extra,
    }
    return httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_requests_over_a_keys_limit_are_refused_with_openais_envelope_and_cost_nothing(
    new_account: Callable[..., Account],
    admin: httpx.Client,
    gateway_url: str,
    sim_url: str,
    model: tuple[str, str],
) -> None:
    name, upstream = model
    account = limited_account(new_account, admin, rpm=3)
    answers = [chat(gateway_url, account.key, name) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
    assert all(a.headers["x-ratelimit-limit"] == "3" for a in answers)
    assert all(a.headers["x-ratelimit-retry-after"] == "0" for a in answers)
    assert all(int(a.headers["x-ratelimit-reset"]) > 1_700_000_000 for a in answers)  # a Unix time
    used = [a.json()["usage"] for a in answers]
    cost = sum(u["prompt_tokens"] * PRICE_IN + u["completion_tokens"] * PRICE_OUT for u in used)
    settled = 1_000_000 - cost  # 1 credit less the three answers (prices per 1M tokens: micros a token)
    wait_until(lambda: balance_micros(gateway_url, account.key) == settled or None, what="the three charges")
    calls = sim_calls(sim_url, upstream)

    refused = chat(gateway_url, account.key, name)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert "requests per minute" in error["message"] and "API key" in error["message"]
    assert all(h in refused.headers for h in RATE_HEADERS)
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 21  # a request comes back every 20 s
    # nothing held, charged or sent upstream for the refused request
    assert sim_calls(sim_url, upstream) == calls
    assert balance_micros(gateway_url, account.key) == settled


def test_an_organisations_limit_is_enforced_on_its_keys(
    new_account: Callable[..., Account], admin: httpx.Client, gateway_url: str, model: tuple[str, str]
) -> None:
    account = new_account(credits=1)
    resp = admin.post("/admin/org/limits", json={"org_id": account.org_id, "rpm": 1})
    assert resp.status_code == 200, resp.text
    assert chat(gateway_url, account.key, model[0]).status_code == 200
    refused = chat(gateway_url, account.key, model[0])
    assert refused.status_code == 429
    assert "organization" in refused.json()["error"]["message"]


def test_each_route_family_refuses_in_its_own_envelope(
    new_account: Callable[..., Account],
    admin: httpx.Client,
    gateway_url: str,
    model: tuple[str, str],
    indoxrouter_provider: str,
) -> None:
    name, hello = model[0], [{"role": "user", "content": "hi"}]
    families: dict[str, tuple[str, dict[str, Any], Callable[[dict[str, Any]], bool]]] = {
        "credit chat": (
            "/api/v1/chat",
            {"model": name, "messages": hello},
            lambda body: set(body) == {"error"} and "requests per minute" in body["error"],
        ),
        "IndoxRouter": (
            "/chat/completions",
            {"provider": indoxrouter_provider, "model": "chat", "messages": hello, "max_tokens": 8},
            lambda body: body["error"] == "rate_limit_exceeded" and body["status_code"] == 429,
        ),
        "Anthropic": (
            "/v1/messages",
            {"model": name, "max_tokens": 8, "messages": hello},
            lambda body: body["type"] == "error" and body["error"]["type"] == "rate_limit_error",
        ),
        "OpenAI embeddings": (
            "/v1/embeddings",
            {"model": name, "input": "hi"},
            lambda body: body["error"]["code"] == "rate_limit_exceeded",
        ),
    }
    for family, (path, body, envelope_ok) in families.items():
        account = limited_account(new_account, admin, rpm=1)
        headers = {"Authorization": f"Bearer {account.key}"}
        first = httpx.post(f"{gateway_url}{path}", json=body, headers=headers, timeout=30)
        assert first.status_code == 200, f"{family}: {first.text}"
        assert first.headers["x-ratelimit-limit"] == "1", family
        refused = httpx.post(f"{gateway_url}{path}", json=body, headers=headers, timeout=30)
        assert refused.status_code == 429, f"{family}: {refused.text}"
        assert envelope_ok(refused.json()), f"{family}: {refused.text}"
        assert "retry-after" in refused.headers and "x-ratelimit-remaining" in refused.headers, family


def test_token_limits_take_the_actual_usage_after_a_streamed_answer(
    new_account: Callable[..., Account], admin: httpx.Client, gateway_url: str, model: tuple[str, str]
) -> None:
    """1,000 tokens a day: a request counts its bound first (prompt + max_tokens 600), then what
    it used (a few dozen), so a second one of the same bound fits once the first is answered."""
    account = limited_account(new_account, admin, tpd=1_000)
    name = model[0]
    with httpx.stream(
        "POST",
        f"{gateway_url}/v1/chat/completions",
        json={
            "model": name,
            "messages": [{"role": "user", "content": "hello there"}],
            "max_tokens": 600,
            "stream": True,
        },
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=30,
    ) as first:
        assert first.status_code == 200
        assert first.headers["x-ratelimit-limit"] == "1000"
        assert int(first.headers["x-ratelimit-remaining"]) < 400  # the bound was taken
        assert b"[DONE]" in b"".join(first.iter_bytes())
    # the true-up gives the unused bound back (off the answer's path): the same bound fits again
    second = wait_until(
        lambda: (r := chat(gateway_url, account.key, name, max_tokens=600)).status_code == 200 and r,
        timeout=10,
        what="the first answer's true-up",
    )
    assert int(second.headers["x-ratelimit-remaining"]) < 400
    # a request larger than the limit itself is refused for good, whatever the wait
    too_large = chat(gateway_url, account.key, name, max_tokens=2_000)
    assert too_large.status_code == 429 and "too large" in too_large.json()["error"]["message"]


def test_a_models_own_limit_counts_every_keys_requests(
    new_account: Callable[..., Account], admin: httpx.Client, gateway_url: str, sim_url: str
) -> None:
    """`config.rpm` on a model (a provider's quota, say) is shared by all keys calling it."""
    name = f"quota-{uuid.uuid4().hex[:8]}"
    config = json.dumps({"base_url": f"{sim_url}/v1", "model": "sim-model", "api_key": "sk-sim", "rpm": 2})
    saved = admin.post(
        "/admin/model/save", json={"name": name, "provider": "openai-compatible", "config": config}
    )
    assert saved.status_code == 200, saved.text
    bad = admin.post(
        "/admin/model/save",
        json={
            "name": f"{name}-bad",
            "provider": "openai-compatible",
            "config": config.replace('"rpm": 2', '"rpm": 0'),
        },
    )
    assert bad.status_code == 400 and "config.rpm" in bad.text
    first, second = new_account(credits=1), new_account(credits=1)
    wait_until(lambda: chat(gateway_url, first.key, name).status_code == 200, what="the model in the catalog")
    answer = chat(gateway_url, second.key, name)
    assert answer.status_code == 200 and answer.headers["x-ratelimit-limit"] == "2"
    refused = chat(gateway_url, first.key, name)
    assert refused.status_code == 429 and "on this model" in refused.json()["error"]["message"]


def test_keys_without_limits_get_no_rate_headers(
    new_account: Callable[..., Account], gateway_url: str, model: tuple[str, str]
) -> None:
    account = new_account(credits=1)
    answer = chat(gateway_url, account.key, model[0])
    assert answer.status_code == 200
    assert not any(h in answer.headers for h in RATE_HEADERS)


def _until_refused(send: Callable[[], httpx.Response], most: int) -> tuple[list[httpx.Response], float]:
    """Sends until the first non-200 (or `most` answers); returns the answers and the seconds taken."""
    started = time.monotonic()
    answers: list[httpx.Response] = []
    while len(answers) < most:
        answers.append(send())
        if answers[-1].status_code != 200:
            break
    return answers, time.monotonic() - started


def test_the_credit_chat_api_limits_each_client_address_whichever_key_it_uses(
    new_account: Callable[..., Account], gateway_url: str, model: tuple[str, str]
) -> None:
    """The credit chat API's "60 requests per minute per IP address". The test stack trusts
    loopback and 10.0.0.0/8 as proxies (GATEWAY_TRUSTED_PROXIES, as behind an ingress), so the
    address before the proxy hop in X-Forwarded-For is the client's."""
    address, elsewhere = f"198.51.100.{uuid.uuid4().int % 250 + 1}", f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    first, second = new_account(credits=80), new_account(credits=80)
    body = {"model": model[0], "messages": [{"role": "user", "content": "hi"}]}

    def ask(account: Account, source: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {account.key}", "X-Forwarded-For": f"{source}, 10.0.0.1"}
        return httpx.post(f"{gateway_url}/api/v1/chat", json=body, headers=headers, timeout=30)

    # half the address's minute from each key: the address's limit is shared by both
    from_first = [ask(first, address) for _ in range(30)]
    assert all(a.status_code == 200 for a in from_first), from_first[-1].text
    assert from_first[0].headers["x-ratelimit-limit"] == "60"
    from_second, seconds = _until_refused(lambda: ask(second, address), most=90)
    admitted = 30 + len(from_second) - 1
    # GCRA: 60 at once, then one more a second as they come back
    assert 60 <= admitted <= 60 + int(seconds) + 2, (admitted, seconds)
    refused = from_second[-1]
    assert refused.status_code == 429, refused.text
    assert (
        set(refused.json()) == {"error"} and "requests per minute on this address" in refused.json()["error"]
    )
    assert 1 <= int(refused.headers["retry-after"]) <= 2 and refused.headers["x-ratelimit-remaining"] == "0"
    # another address is not limited by this one; each key paid for its own answers only
    assert ask(second, elsewhere).status_code == 200
    wait_until(
        lambda: balance_micros(gateway_url, second.key) == (80 - len(from_second)) * 1_000_000 or None,
        what="the second key charged one credit an answer, nothing for the refusal",
    )
    assert balance_micros(gateway_url, first.key) == 50 * 1_000_000


def test_indoxrouter_limits_each_key_per_hour(
    new_account: Callable[..., Account], gateway_url: str, indoxrouter_provider: str
) -> None:
    """IndoxRouter's per-key hourly limit (GATEWAY_INDOXROUTER_REQUESTS_PER_HOUR: 60 on the test
    stack), refused in IndoxRouter's envelope; another key is not affected."""
    account, other = new_account(credits=1), new_account(credits=1)
    body = {
        "provider": indoxrouter_provider,
        "model": "chat",
        "messages": [{"role": "user", "content": "hi"}],
    }

    def ask(who: Account) -> httpx.Response:
        headers = {"Authorization": f"Bearer {who.key}"}
        return httpx.post(
            f"{gateway_url}/chat/completions", json={**body, "max_tokens": 4}, headers=headers, timeout=30
        )

    answers, seconds = _until_refused(lambda: ask(account), most=80)
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].headers["x-ratelimit-limit"] == "60"
    assert 60 <= len(answers) - 1 <= 60 + int(seconds / 60) + 1
    refused = answers[-1].json()
    assert answers[-1].status_code == 429 and refused["error"] == "rate_limit_exceeded", refused
    assert refused["status_code"] == 429 and "requests per hour" in refused["message"]
    assert 50 <= int(answers[-1].headers["retry-after"]) <= 61  # one request comes back a minute
    assert ask(other).status_code == 200


def test_a_keys_tier_sets_its_limits(
    new_account: Callable[..., Account], admin: httpx.Client, gateway_url: str, model: tuple[str, str]
) -> None:
    """SloughGPT's `free` tier (100 requests a minute, 10,000 tokens a day) on a key: its answers carry
    the tier's numbers, and a request asking for more tokens than the day allows is refused at once,
    before anything is held or sent."""
    account = new_account(credits=1)
    assert admin.post("/admin/api-key/limits", json={"id": account.key_id, "tier": "free"}).status_code == 200
    answer = chat(gateway_url, account.key, model[0])
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-ratelimit-limit"] == "100" and answer.headers["x-ratelimit-remaining"] == "99"
    greedy = chat(gateway_url, account.key, model[0], max_tokens=20_000)
    assert greedy.status_code == 429, greedy.text
    message = greedy.json()["error"]["message"]
    assert "Request too large for tokens per day" in message and "Limit 10000" in message
    assert greedy.headers["x-ratelimit-limit"] == "10000"
