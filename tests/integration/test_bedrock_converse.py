"""The bedrock-converse provider end to end: the Bedrock-style gateway's `/admin/model/save` body (provider
`bedrock-converse`, config `{"modelId": ...}`) with credentials and an `endpoint` pointing at the
stack's simulator (its Converse dialect checks the SigV4 Authorization header), called with the
official `openai` SDK, streamed and not, with a doc part; the balance falls by exactly the cost."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable

import httpx
from openai import OpenAI

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, ledger_usage, wait_until

PRICES = {"price_in": 2, "price_out": 6, "price_cached_in": 1, "price_cache_write": 3}
EIGHT_WORDS = "one two three four five six seven eight"
CACHED_COST = 2 * 2 + 2 * 1 + 4 * 3 + 4 * 6  # 2 fresh, 2 cache reads, 4 cache writes; 4 out


def register_bedrock(admin: httpx.Client, sim_url: str, model_id: str) -> str:
    name = f"bedrock-{uuid.uuid4().hex[:10]}"
    config = {
        "modelId": model_id,
        "region": "eu-west-1",
        "accessKeyId": "AKIDSIM",
        "secretAccessKey": "sim-secret-key",
        "endpoint": sim_url,
    }
    body = {"name": name, "provider": "bedrock-converse", "config": json.dumps(config), **PRICES}
    resp = admin.post("/admin/model/save", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["provider"] == "bedrock-converse" and "sim-secret-key" not in resp.text
    return name


def settled(gateway_url: str, account: Account, expected: int) -> None:
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == expected or None, what="usage to be settled"
    )


def test_bedrock_gateway_body_is_accepted(admin: httpx.Client) -> None:
    body = {"name": f"br-{uuid.uuid4().hex[:8]}", "provider": "bedrock-converse"}
    resp = admin.post("/admin/model/save", json={**body, "config": '{"modelId": "somevalue"}'})
    assert resp.status_code == 200, resp.text


def test_chat_streamed_and_not_is_billed_exactly(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    admin: httpx.Client,
    sim_url: str,
    gateway_url: str,
    config: StackConfig,
) -> None:
    model = register_bedrock(admin, sim_url, "anthropic.claude-sim-cachewrite-v1:0")
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)
    client = client_for(account.key)
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": EIGHT_WORDS}], max_tokens=4
    )
    assert reply.model == model and reply.choices[0].message.content == "tok0 tok1 tok2 tok3"
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (8, 4)
    settled(gateway_url, account, before - CACHED_COST)
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": EIGHT_WORDS}],
        max_tokens=4,
        stream=True,
        stream_options={"include_usage": True},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "tok0 tok1 tok2 tok3 "
    settled(gateway_url, account, before - 2 * CACHED_COST)
    assert ledger_usage(config, account.org_id) == (2, 2 * CACHED_COST)


def test_a_doc_part_goes_up_natively(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    admin: httpx.Client,
    sim_url: str,
    gateway_url: str,
) -> None:
    model = register_bedrock(admin, sim_url, "anthropic.claude-sim-v1:0")
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)
    data = b"alpha beta gamma"
    doc = {
        "type": "doc",
        "doc": {
            "name": "notes",
            "format": "txt",
            "size": len(data),
            "source": {"bytes": base64.b64encode(data).decode()},
        },
    }
    reply = client_for(account.key).chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": [{"type": "text", "text": "summarise"}, doc]}],  # type: ignore[list-item]
        max_tokens=4,
    )
    # the simulator: 1 word + 32 per document + the document name's 1 word
    assert reply.usage is not None and reply.usage.prompt_tokens == 1 + 32 + 1
    settled(gateway_url, account, before - (34 * 2 + 4 * 6))
