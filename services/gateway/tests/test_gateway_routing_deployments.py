"""Several deployments per model name (catalog/upstreams.py, routing/chain.py): the config checked on
save, secrets encrypted and never listed, the snapshot's entries, the order of a request's chain
(priority, then weights: a seeded random makes it deterministic), and cooldowns per deployment."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from tollgate.common.auth_client import Principal
from tollgate.common.errors import InvalidRequest, UpstreamError
from tollgate.gateway.catalog.models import Model
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.service import parse_config, stored_form, to_out
from tollgate.gateway.catalog.snapshot import CatalogEntry, CatalogSnapshot, UpstreamPool
from tollgate.gateway.routing.attempts import ChainFailed, Router
from tollgate.gateway.routing.breaker import Cooldowns
from tollgate.gateway.routing.chain import Link, chain_of, weighted_order
from tollgate.gateway.routing.failures import AttemptFailed, refused

from gateway_fakes import FakeCatalog, entry  # isort: skip

BASE = {"base_url": "http://primary/v1", "model": "up-a", "api_key": "sk-top"}
ANYONE = Principal(1, "org-1", "user-1", "user", 0, ("read", "write"), "tg_x", 0, 0)


def everything(_: CatalogEntry) -> bool:
    return True


# ---- config ---------------------------------------------------------------------------------


def test_deployments_are_parsed_with_their_defaults() -> None:
    config = parse_config(
        {
            **BASE,
            "priority": 1,
            "deployments": [
                {"base_url": "http://b/v1/", "api_key": "sk-b", "weight": 3},
                {
                    "name": "eu",
                    "provider": "Anthropic",
                    "base_url": "http://c/v1",
                    "model": "claude",
                    "priority": 2,
                },
                {
                    "provider": "bedrock-converse",
                    "region": "eu-west-1",
                    "accessKeyId": "AK",
                    "secretAccessKey": "S",
                },
            ],
        },
        "m",
        4096,
    )
    assert config.extra == {"priority": 1}  # the top-level's weight / priority stay in the extra config
    first, second, third = config.deployments
    assert (first.label, first.provider, first.weight, first.priority) == ("1", "openai-compatible", 3, 0)
    assert first.upstream.base_url == "http://b/v1" and first.upstream.upstream_model == "up-a"  # model's
    assert first.upstream.api_key == "sk-b" and first.upstream.api_key_given
    assert (second.label, second.provider, second.priority, second.upstream.api_key) == (
        "eu",
        "anthropic",
        2,
        None,
    )
    assert third.label == "3" and third.upstream.base_url == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    assert orjson.loads(third.upstream.api_key or "") == {
        "region": "eu-west-1",
        "accessKeyId": "AK",
        "secretAccessKey": "S",
    }


@pytest.mark.parametrize(
    ("config", "param"),
    [
        ({"deployments": {"base_url": "http://b/v1"}}, "config.deployments"),
        ({"deployments": ["http://b/v1"]}, "config.deployments[0]"),
        ({"deployments": [{}]}, "config.deployments[0].base_url"),
        ({"deployments": [{"base_url": "ftp://b"}]}, "config.deployments[0].base_url"),
        ({"deployments": [{"base_url": "http://b", "api_key": 7}]}, "config.deployments[0].api_key"),
        ({"deployments": [{"base_url": "http://b", "model": ""}]}, "config.deployments[0].model"),
        ({"deployments": [{"base_url": "http://b", "weight": 0}]}, "config.deployments[0].weight"),
        ({"deployments": [{"base_url": "http://b", "weight": 1.5}]}, "config.deployments[0].weight"),
        ({"deployments": [{"base_url": "http://b", "weight": True}]}, "config.deployments[0].weight"),
        ({"deployments": [{"base_url": "http://b", "priority": -1}]}, "config.deployments[0].priority"),
        ({"deployments": [{"base_url": "http://b", "provider": "nope"}]}, "config.deployments[0].provider"),
        ({"deployments": [{"base_url": "http://b", "name": "default"}]}, "config.deployments[0].name"),
        ({"deployments": [{"base_url": "http://b", "name": "a b"}]}, "config.deployments[0].name"),
        (
            {"deployments": [{"base_url": "http://b", "name": "x"}, {"base_url": "http://c", "name": "x"}]},
            "config.deployments[1].name",
        ),
        ({"deployments": [{"base_url": "http://b", "fallbacks": ["x"]}]}, "config.deployments[0].fallbacks"),
        (
            {"deployments": [{"provider": "bedrock-converse", "region": "not a region"}]},
            "config.deployments[0].region",
        ),
        ({"deployments": [{"base_url": "http://b/v1"}] * 17}, "config.deployments"),
        ({"weight": 0}, "config.weight"),
        ({"priority": "first"}, "config.priority"),
    ],
)
def test_a_bad_deployment_is_refused_naming_the_field(config: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused_:
        parse_config({**BASE, **config}, "m", 4096)
    assert refused_.value.param == param


def saved(extra: dict[str, Any], **kw: Any) -> Model:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": 7,
        "name": "m",
        "provider": "openai-compatible",
        "base_url": "http://primary/v1",
        "upstream_model": "up-a",
        "api_key_encrypted": None,
        "extra_config": extra,
        "price_in_micros": 1_000_000,
        "price_out_micros": 3_000_000,
        "price_request_micros": 0,
        "price_image_micros": 0,
        "price_embedding_micros": None,
        "price_cached_in_micros": None,
        "price_cache_write_micros": None,
        "price_reasoning_micros": None,
        "group_id": 0,
        "multiple": False,
        "max_tokens_default": 4096,
        "created_at": now,
        "updated_at": now,
    }
    values.update(kw)
    return Model(**values)


def test_secrets_are_encrypted_kept_on_update_and_never_listed() -> None:
    box = SecretBox("test-secret")
    config = parse_config(
        {
            **BASE,
            "deployments": [
                {"name": "b", "base_url": "http://b/v1", "api_key": "sk-b", "weight": 3},
                {"name": "c", "base_url": "http://c/v1"},
            ],
        },
        "m",
        4096,
    )
    stored = stored_form(config.deployments, box, None)
    assert "sk-b" not in orjson.dumps(stored).decode()
    assert box.decrypt(stored[0]["api_key_encrypted"]) == "sk-b" and stored[1]["api_key_encrypted"] is None
    # saved again without the key: deployment "b" keeps its stored secret; "c" gets one
    row = saved({"deployments": stored})
    redeployed = [
        {"name": "b", "base_url": "http://b2/v1"},
        {"name": "c", "base_url": "http://c/v1", "api_key": "sk-c"},
    ]
    again = parse_config({**BASE, "deployments": redeployed}, "m", 4096)
    kept = stored_form(again.deployments, box, row)
    assert (
        kept[0]["api_key_encrypted"] == stored[0]["api_key_encrypted"]
        and kept[0]["base_url"] == "http://b2/v1"
    )
    assert box.decrypt(kept[1]["api_key_encrypted"]) == "sk-c"
    # an explicit empty key clears it
    cleared = parse_config(
        {**BASE, "deployments": [{"name": "b", "base_url": "http://b/v1", "api_key": ""}]}, "m", 4096
    )
    assert stored_form(cleared.deployments, box, row)[0]["api_key_encrypted"] is None
    out = to_out(saved({"weight": 2, "priority": 1, "deployments": stored}))
    listed = out.model_dump_json()
    assert "api_key_encrypted" not in listed and stored[0]["api_key_encrypted"] not in listed
    assert (out.weight, out.priority) == (2, 1)
    assert [(d.name, d.base_url, d.weight, d.priority, d.has_api_key) for d in out.deployments] == [
        ("b", "http://b/v1", 3, 0, True),
        ("c", "http://c/v1", 1, 0, False),
    ]


def test_the_snapshot_gives_the_model_its_deployments() -> None:
    box = SecretBox("test-secret")
    client = httpx.AsyncClient()
    snapshot = CatalogSnapshot(None, box, UpstreamPool(lambda _: client))  # type: ignore[arg-type]
    b = {"name": "b", "provider": "anthropic", "base_url": "http://b/v1", "api_key": "sk-b", "priority": 1}
    config = parse_config({**BASE, "weight": 2, "deployments": [b]}, "m", 4096)
    row = saved(
        {"weight": 2, "deployments": stored_form(config.deployments, box, None)},
        api_key_encrypted=box.encrypt("sk-top"),
    )
    model = snapshot._entry(row)
    assert model is not None and model.routed
    assert (model.deployment, model.provider, model.api_key, model.weight, model.priority) == (
        "m/default",
        "openai-compatible",
        "sk-top",
        2,
        0,
    )
    (other,) = model.deployments
    assert (other.name, other.deployment, other.provider, other.chat_url, other.api_key) == (
        "m",
        "m/b",
        "anthropic",
        "http://b/v1/chat/completions",
        "sk-b",
    )
    # a plain-http Anthropic deployment takes the lean client too (its non-streamed calls)
    assert (
        other.lean is not None and other.price_out_micros == model.price_out_micros and not other.deployments
    )
    # a deployment whose secret cannot be read is left out; the model keeps serving
    junk = {
        "name": "b",
        "provider": "openai",
        "base_url": "http://b/v1",
        "model": "x",
        "api_key_encrypted": "j",
    }
    broken = saved({"deployments": [junk]})
    alone = snapshot._entry(broken)
    assert alone is not None and alone.deployments == () and alone.deployment == "m"


# ---- the chain's order ------------------------------------------------------------------------


def model_with(client: httpx.AsyncClient, *deployments: tuple[str, int, int], **kw: Any) -> CatalogEntry:
    """A model whose top-level is deployments[0]; each (label, weight, priority)."""
    made = [
        entry("m", f"up-{label}", client, deployment_id=f"m/{label}", weight=weight, priority=priority)
        for label, weight, priority in deployments
    ]
    first = made[0]
    return CatalogEntry(
        **{**{f: getattr(first, f) for f in first.__dataclass_fields__}, "deployments": tuple(made[1:]), **kw}
    )


def labels(chain: list[CatalogEntry] | None) -> list[str]:
    assert chain is not None
    return [e.deployment for e in chain]


def test_a_model_with_several_deployments_has_a_chain_even_without_fallbacks() -> None:
    client = httpx.AsyncClient()
    model = model_with(client, ("default", 1, 0), ("b", 1, 0))
    chain = chain_of(model, None, FakeCatalog([model]), ANYONE, everything, draw=random.Random(1).random)
    assert sorted(labels(chain)) == ["m/b", "m/default"]
    single = entry("s", "up-s", client)
    assert chain_of(single, None, FakeCatalog([single]), ANYONE, everything) is None


def test_lower_priority_goes_first_and_fallbacks_come_after_every_deployment() -> None:
    client = httpx.AsyncClient()
    model = model_with(client, ("default", 5, 1), ("b", 1, 0), ("c", 1, 2), fallbacks=("f",))
    fallback = entry("f", "up-f", client)
    catalog = FakeCatalog([model, fallback])
    for seed in range(20):
        chain = chain_of(model, None, catalog, ANYONE, everything, draw=random.Random(seed).random)
        assert labels(chain) == ["m/b", "m/default", "m/c", "f"]
    # the request's fallbacks replace the model's; the model's deployments still come first
    other = model_with(client, ("default", 1, 0), ("x", 1, 0))
    other = CatalogEntry(**{**{f: getattr(other, f) for f in other.__dataclass_fields__}, "name": "o"})
    catalog = FakeCatalog([model, fallback, other])
    chain = chain_of(model, ["o"], catalog, ANYONE, everything, draw=random.Random(0).random)
    assert labels(chain)[:3] == ["m/b", "m/default", "m/c"] and len(labels(chain)) == 5


def test_a_deployment_that_cannot_serve_the_operation_is_left_out() -> None:
    client = httpx.AsyncClient()
    model = model_with(client, ("default", 1, 0), ("b", 1, 0), ("c", 1, 0))
    chain = chain_of(
        model,
        None,
        FakeCatalog([model]),
        ANYONE,
        lambda e: e.deployment != "m/b",
        draw=random.Random(3).random,
    )
    assert sorted(labels(chain)) == ["m/c", "m/default"]


def test_the_order_within_a_priority_is_deterministic_for_a_seed_and_follows_the_weights() -> None:
    client = httpx.AsyncClient()
    model = model_with(client, ("default", 3, 0), ("b", 1, 0))
    catalog = FakeCatalog([model])
    first = [
        labels(chain_of(model, None, catalog, ANYONE, everything, draw=random.Random(s).random))
        for s in range(5)
    ]
    again = [
        labels(chain_of(model, None, catalog, ANYONE, everything, draw=random.Random(s).random))
        for s in range(5)
    ]
    assert first == again
    rng = random.Random(42)
    counts = Counter(
        labels(chain_of(model, None, catalog, ANYONE, everything, draw=rng.random))[0] for _ in range(4000)
    )
    assert 2700 < counts["m/default"] < 3300 and counts["m/default"] + counts["m/b"] == 4000  # 3:1, ±10 %


def test_weighted_order_draws_each_next_among_those_left() -> None:
    client = httpx.AsyncClient()
    entries = [entry("m", "x", client, deployment_id=f"m/{i}", weight=w) for i, w in enumerate((6, 3, 1))]
    assert [e.deployment for e in weighted_order(entries, lambda: 0.0)] == ["m/0", "m/1", "m/2"]
    assert [e.deployment for e in weighted_order(entries, lambda: 0.95)] == ["m/2", "m/1", "m/0"]
    rng = random.Random(7)
    seconds = Counter(weighted_order(entries, rng.random)[1].deployment for _ in range(6000))
    # P(second = 1) = P(0 first) * 3/4 + P(2 first) * 3/9 = .45 + .0333
    assert 0.43 < seconds["m/1"] / 6000 < 0.54


# ---- cooldowns per deployment -----------------------------------------------------------------


async def test_a_failing_deployment_cools_down_alone_and_comes_back() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    client = httpx.AsyncClient()
    model = model_with(client, ("default", 1, 0), ("b", 1, 1))
    links = [Link(e, None, None) for e in (model, *model.deployments)]  # type: ignore[arg-type]
    broken = {"m/default"}
    seen: list[str] = []

    async def attempt(link: Link, left: float) -> str:
        seen.append(link.entry.deployment)
        if link.entry.deployment in broken:
            raise refused(503, b"")  # type: ignore[misc]
        return link.entry.deployment

    router = Router(
        Cooldowns(threshold=3, cooldown_s=30, clock=lambda: now[0]),
        retries=1,
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert (await router.run(links, attempt, 5.0))[1] == "m/b"
    assert seen == ["m/default", "m/default", "m/b"]
    seen.clear()
    assert (await router.run(links, attempt, 5.0))[1] == "m/b"
    assert seen == ["m/default", "m/b"]  # the third failure in a row: cooling, no retry
    assert router.cooldowns.cooling("m/default") and not router.cooldowns.cooling("m")
    seen.clear()
    assert (await router.run(links, attempt, 5.0))[1] == "m/b" and seen == ["m/b"]  # skipped
    now[0] += 31
    broken.clear()
    seen.clear()
    assert (await router.run(links, attempt, 5.0))[1] == "m/default" and seen == ["m/default"]  # back
    router.succeeded(model)  # the fast path's report takes the entry (or its deployment id)
    router.succeeded("m/default")


async def test_when_every_deployment_fails_the_error_names_them() -> None:
    async def sleep(_: float) -> None:
        return None

    client = httpx.AsyncClient()
    model = model_with(client, ("default", 1, 0), ("b", 1, 1))
    links = [Link(e, None, None) for e in (model, *model.deployments)]  # type: ignore[arg-type]

    async def attempt(link: Link, left: float) -> str:
        raise AttemptFailed("upstream_error", "The upstream model failed (HTTP 500).", status_code=500)

    router = Router(Cooldowns(threshold=0), retries=1, sleep=sleep)
    with pytest.raises(ChainFailed) as failed:
        await router.run(links, attempt, 5.0)
    error = failed.value.error()
    assert isinstance(error, UpstreamError)
    assert "2 deployments tried (m/default, m/b), 4 attempts." in error.message
