from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from gateway_fakes import FakeAuth
from prometheus_client import CollectorRegistry

from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.errors import InvalidRequest
from tollgate.common.http import create_app
from tollgate.common.migrations import upgrade_to_head
from tollgate.gateway.catalog import routes as catalog_routes
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.service import parse_config
from tollgate.gateway.catalog.snapshot import CatalogSnapshot, UpstreamPool
from tollgate.gateway.db import alembic_ini
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.principals.cache import PrincipalCache
from tollgate.gateway.principals.dependencies import principal_dependency

SERVER = os.environ.get("GATEWAY_TEST_ADMIN_URL", "postgresql://tollgate@127.0.0.1:25532/postgres")
DB_URL = SERVER.replace("postgresql://", "postgresql+psycopg://").replace(
    "/postgres", "/scratch_gateway_unit"
)


def test_config_string_is_parsed_and_the_secret_split_out() -> None:
    config = parse_config(
        '{"base_url": "http://h:1/v1/", "model": "up", "api_key": "s", "temp": 1}', "pub", 4096
    )
    assert (config.base_url, config.upstream_model, config.api_key) == ("http://h:1/v1", "up", "s")
    assert config.extra == {"temp": 1}
    assert parse_config({"base_url": "https://h"}, "pub", 4096).upstream_model == "pub"
    for bad in ("not json", '{"model": "x"}', '{"base_url": "ftp://h"}'):
        with pytest.raises(InvalidRequest):
            parse_config(bad, "pub", 4096)


def test_secret_box_round_trips_and_depends_on_the_key() -> None:
    token = SecretBox("one").encrypt("sk-provider")
    assert "sk-provider" not in token
    assert SecretBox("one").decrypt(token) == "sk-provider"
    with pytest.raises(ValueError):
        SecretBox("two").decrypt(token)


@pytest.fixture(scope="module")
def database() -> str:
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS scratch_gateway_unit WITH (FORCE)")
        conn.execute("CREATE DATABASE scratch_gateway_unit")
    upgrade_to_head(alembic_ini(), DB_URL)
    return DB_URL


@pytest.fixture
async def admin_client(database: str) -> AsyncIterator[tuple[httpx.AsyncClient, CatalogSnapshot]]:
    engine = make_engine(database, pool_size=2)
    sessions = make_sessionmaker(engine)
    box = SecretBox("test")
    pool = UpstreamPool(lambda _: httpx.AsyncClient())
    snapshot = CatalogSnapshot(sessions, box, pool, poll_s=0.05)
    registry = CollectorRegistry()
    cache = PrincipalCache(FakeAuth().authenticate, GatewayMetrics(registry))
    app = create_app("gateway", registry)
    app.include_router(
        catalog_routes.build_router(sessions, snapshot, box, principal_dependency(cache), 4096)
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    yield client, snapshot
    await client.aclose()
    await pool.close()
    await engine.dispose()


ADMIN = {"authorization": "Bearer admin-key"}
CONFIG = '{"base_url": "http://sim:8090/v1", "model": "sim-model", "api_key": "sk-secret"}'


async def test_admin_save_list_delete_and_snapshot(
    admin_client: tuple[httpx.AsyncClient, CatalogSnapshot],
) -> None:
    client, snapshot = admin_client
    save = {
        "name": "m1",
        "provider": "openai-compatible",
        "config": CONFIG,
        "price_in": 0.5,
        "price_out": 1.25,
    }
    denied = await client.post("/admin/model/save", json=save, headers={"authorization": "Bearer user-key"})
    assert denied.status_code == 403
    bad = await client.post("/admin/model/save", json={**save, "provider": "bedrock"}, headers=ADMIN)
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "provider")

    created = await client.post("/admin/model/save", json=save, headers=ADMIN)
    assert created.status_code == 200
    out = created.json()
    assert {"id", "name", "provider", "price_in", "price_out", "created_at", "updated_at"} <= out.keys()
    assert "sk-secret" not in created.text
    entry = snapshot.get("m1")
    assert entry is not None
    assert (entry.price_in_micros, entry.price_out_micros, entry.api_key) == (500_000, 1_250_000, "sk-secret")
    assert entry.chat_url == "http://sim:8090/v1/chat/completions"

    # update without api_key keeps the stored secret
    update = {**save, "id": out["id"], "config": '{"base_url": "http://sim:8090/v1"}', "price_in": 2}
    assert (await client.post("/admin/model/save", json=update, headers=ADMIN)).status_code == 200
    entry = snapshot.get("m1")
    assert entry is not None and entry.api_key == "sk-secret" and entry.price_in_micros == 2_000_000

    # saving again by name, without an id, updates the same model (register-or-update)
    by_name = await client.post("/admin/model/save", json={**save, "price_out": 3}, headers=ADMIN)
    assert by_name.status_code == 200 and by_name.json()["id"] == out["id"]
    entry = snapshot.get("m1")
    assert entry is not None and entry.price_out_micros == 3_000_000

    listed = (await client.get("/admin/model/list?q=m1", headers=ADMIN)).json()
    assert listed["total"] == 1 and listed["data"][0]["name"] == "m1"

    assert (
        await client.post("/admin/model/delete", json={"id": out["id"]}, headers=ADMIN)
    ).status_code == 200
    assert snapshot.get("m1") is None
    again = await client.post("/admin/model/delete", json={"id": out["id"]}, headers=ADMIN)
    assert again.status_code == 404
    # a deleted name can be reused
    assert (await client.post("/admin/model/save", json=save, headers=ADMIN)).status_code == 200


async def test_other_processes_converge_by_polling(
    admin_client: tuple[httpx.AsyncClient, CatalogSnapshot],
) -> None:
    client, snapshot = admin_client
    other = CatalogSnapshot(
        snapshot._sessions, SecretBox("test"), UpstreamPool(lambda _: httpx.AsyncClient()), 0.05
    )
    await other.reload()
    poller = asyncio.create_task(other.poll_forever())
    save = {"name": "polled", "provider": "openai", "config": CONFIG, "price_in": 1, "price_out": 1}
    assert (await client.post("/admin/model/save", json=save, headers=ADMIN)).status_code == 200
    for _ in range(50):
        if other.get("polled") is not None:
            break
        await asyncio.sleep(0.02)
    poller.cancel()
    assert other.get("polled") is not None


async def test_pricing_modes_are_saved_listed_and_reach_the_snapshot(
    admin_client: tuple[httpx.AsyncClient, CatalogSnapshot],
) -> None:
    client, snapshot = admin_client
    save = {
        "name": "priced-modes",
        "provider": "openai-compatible",
        "config": CONFIG,
        "price_in": 1,
        "price_request": 0.25,
        "price_image": "0.04",
        "price_embedding": 0.1,
    }
    created = await client.post("/admin/model/save", json=save, headers=ADMIN)
    assert created.status_code == 200, created.text
    out = created.json()
    assert (out["price_request"], out["price_image"], out["price_embedding"]) == (0.25, 0.04, 0.1)
    entry = snapshot.get("priced-modes")
    assert entry is not None
    assert (entry.price_request_micros, entry.price_image_micros, entry.price_embedding_micros) == (
        250_000,
        40_000,
        100_000,
    )
    assert entry.api_base == "http://sim:8090/v1"
    listed = (await client.get("/admin/model/list?q=priced-modes", headers=ADMIN)).json()["data"][0]
    assert (listed["price_request"], listed["price_image"], listed["price_embedding"]) == (0.25, 0.04, 0.1)

    plain = await client.post("/admin/model/save", json={**save, "price_embedding": None}, headers=ADMIN)
    assert plain.json()["price_embedding"] is None
    entry = snapshot.get("priced-modes")
    assert entry is not None and entry.price_embedding_micros is None  # embeddings fall back to price_in
    for field in ("price_request", "price_image", "price_embedding"):
        bad = await client.post("/admin/model/save", json={**save, field: -1}, headers=ADMIN)
        assert (bad.status_code, bad.json()["error"]["param"]) == (400, field)


async def test_bedrock_gateway_bedrock_converse_model_is_saved_with_its_secret_encrypted(
    admin_client: tuple[httpx.AsyncClient, CatalogSnapshot],
) -> None:
    client, snapshot = admin_client
    seed = {"name": "br-seed", "provider": "bedrock-converse", "config": '{"modelId": "somevalue"}'}
    r = await client.post("/admin/model/save", json=seed, headers=ADMIN)
    assert r.status_code == 200, r.text
    entry = snapshot.get("br-seed")
    assert entry is not None and entry.upstream_model == "somevalue"
    assert entry.api_base == "https://bedrock-runtime.us-east-1.amazonaws.com"
    config = (
        '{"modelId": "anthropic.claude-3:0", "region": "eu-west-1", "endpoint": "http://sim:8090",'
        ' "accessKeyId": "AKID", "secretAccessKey": "aws-secret-value"}'
    )
    r = await client.post("/admin/model/save", json={**seed, "name": "br-2", "config": config}, headers=ADMIN)
    assert r.status_code == 200 and "aws-secret-value" not in r.text
    listed = await client.get("/admin/model/list?q=br-2", headers=ADMIN)
    assert "aws-secret-value" not in listed.text
    with psycopg.connect(SERVER.replace("/postgres", "/scratch_gateway_unit")) as conn:
        stored = conn.execute(
            "SELECT api_key_encrypted::text, extra_config::text FROM models WHERE name = 'br-2'"
        ).fetchone()
    assert stored is not None and all("aws-secret-value" not in (v or "") for v in stored)
    entry = snapshot.get("br-2")
    assert entry is not None and entry.api_base == "http://sim:8090"
    assert entry.api_key is not None and '"secretAccessKey":"aws-secret-value"' in entry.api_key


async def test_a_models_own_limits_are_listed_so_an_editor_can_keep_them(
    admin_client: tuple[httpx.AsyncClient, CatalogSnapshot],
) -> None:
    client, _ = admin_client
    config = {"base_url": "http://sim:8090/v1", "model": "sim-model", "rpm": 500, "tpd": 90_000}
    save = {"name": "limited", "provider": "openai-compatible", "config": config}
    r = await client.post("/admin/model/save", json=save, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert (r.json()["rpm"], r.json()["tpm"], r.json()["tpd"]) == (500, None, 90_000)
    listed = (await client.get("/admin/model/list?q=limited", headers=ADMIN)).json()["data"][0]
    assert (listed["rpm"], listed["tpm"], listed["tpd"]) == (500, None, 90_000)
    plain = await client.post("/admin/model/save", json={**save, "config": CONFIG}, headers=ADMIN)
    assert (plain.json()["rpm"], plain.json()["tpm"], plain.json()["tpd"]) == (None, None, None)


async def test_an_edit_of_only_the_price_keeps_every_other_config_key(
    admin_client: tuple[httpx.AsyncClient, CatalogSnapshot],
) -> None:
    """What the console does: the list's `config` sent back with the model's other fields and a new
    price. Nothing of the Bedrock model's config is lost, no secret is ever listed, the stored ones
    are kept, and a new region alone re-signs the kept credentials."""
    client, snapshot = admin_client
    guardrail = {"guardrailIdentifier": "gr-1", "guardrailVersion": "2", "trace": "enabled"}
    config = {
        "modelId": "anthropic.claude-3:0",
        "region": "eu-west-1",
        "endpoint": "http://sim:8090",
        "accessKeyId": "AKID",
        "secretAccessKey": "aws-secret-value",
        "guardrailConfig": guardrail,
        "fallbacks": ["sim-other"],
        "rpm": 100,
        "weight": 2,
        "max_tokens": 1000,
        "deployments": [{"name": "b", "provider": "openai-compatible", "base_url": "http://b:1/v1",
                         "api_key": "sk-deployment"}],
    }  # fmt: skip
    save = {"name": "br-edit", "provider": "bedrock-converse", "config": json.dumps(config),
            "group_id": 3, "multiple": True, "price_in": 1, "price_out": 3}  # fmt: skip
    r = await client.post("/admin/model/save", json=save, headers=ADMIN)
    assert r.status_code == 200, r.text
    listed = (await client.get("/admin/model/list?q=br-edit", headers=ADMIN)).json()["data"][0]
    for secret in ("AKID", "aws-secret-value", "sk-deployment", "api_key_encrypted"):
        assert secret not in json.dumps(listed)
    expected = {
        "modelId": "anthropic.claude-3:0",
        "region": "eu-west-1",
        "endpoint": "http://sim:8090",
        "max_tokens": 1000,
        "guardrailConfig": guardrail,
        "fallbacks": ["sim-other"],
        "rpm": 100,
        "weight": 2,
        "deployments": [{"name": "b", "provider": "openai-compatible", "base_url": "http://b:1/v1",
                         "model": "anthropic.claude-3:0", "weight": 1, "priority": 0}],
    }  # fmt: skip
    assert listed["config"] == expected
    kept = {k: listed[k] for k in ("id", "name", "provider", "group_id", "multiple", "config")}
    edited = await client.post(
        "/admin/model/save", json={**kept, "price_in": 2, "price_out": 3}, headers=ADMIN
    )
    assert edited.status_code == 200, edited.text
    after = (await client.get("/admin/model/list?q=br-edit", headers=ADMIN)).json()["data"][0]
    assert after["config"] == expected and after["price_in"] == 2
    assert (after["group_id"], after["multiple"], after["has_api_key"]) == (3, True, True)
    assert after["deployments"][0]["has_api_key"]
    entry = snapshot.get("br-edit")
    assert entry is not None and entry.api_base == "http://sim:8090" and entry.price_in_micros == 2_000_000
    assert entry.api_key is not None and json.loads(entry.api_key) == {
        "region": "eu-west-1", "accessKeyId": "AKID", "secretAccessKey": "aws-secret-value"
    }  # fmt: skip
    assert entry.deployments[0].api_key == "sk-deployment"
    # the region alone changed: the endpoint follows it, the kept credentials sign for it
    moved = {**kept, "config": {**after["config"], "region": "us-west-2"}}
    moved["config"].pop("endpoint")
    assert (await client.post("/admin/model/save", json=moved, headers=ADMIN)).status_code == 200
    entry = snapshot.get("br-edit")
    assert entry is not None and entry.api_base == "https://bedrock-runtime.us-west-2.amazonaws.com"
    assert entry.api_key is not None and json.loads(entry.api_key)["region"] == "us-west-2"
    assert json.loads(entry.api_key)["secretAccessKey"] == "aws-secret-value"


async def test_a_bedrock_deployment_lists_its_region_and_a_new_region_re_signs_its_kept_credentials(
    admin_client: tuple[httpx.AsyncClient, CatalogSnapshot],
) -> None:
    """What the console's deployment rows do for Bedrock: the region is listed (never the
    credentials), the list's config saves back unchanged, and a new region alone moves the endpoint
    and re-signs the kept credentials, as it does for the model's own upstream."""
    client, snapshot = admin_client
    deployment = {"name": "eu", "provider": "bedrock-converse", "region": "eu-west-1",
                  "accessKeyId": "AKID-DEP", "secretAccessKey": "dep-aws-secret"}  # fmt: skip
    config = {"base_url": "http://sim:8090/v1", "model": "m", "deployments": [deployment]}
    save = {"name": "br-dep", "provider": "openai-compatible", "config": config,
            "price_in": 1, "price_out": 1}  # fmt: skip
    assert (await client.post("/admin/model/save", json=save, headers=ADMIN)).status_code == 200
    listed = (await client.get("/admin/model/list?q=br-dep", headers=ADMIN)).json()["data"][0]
    assert "AKID-DEP" not in json.dumps(listed) and "dep-aws-secret" not in json.dumps(listed)
    assert listed["deployments"][0]["region"] == "eu-west-1" and listed["deployments"][0]["has_api_key"]
    assert listed["config"]["deployments"] == [
        {"name": "eu", "provider": "bedrock-converse", "region": "eu-west-1", "model": "m",
         "weight": 1, "priority": 0}
    ]  # fmt: skip
    kept = {k: listed[k] for k in ("id", "name", "provider", "config")}
    assert (await client.post("/admin/model/save", json=kept, headers=ADMIN)).status_code == 200
    entry = snapshot.get("br-dep")
    assert entry is not None
    (dep,) = entry.deployments
    assert dep.api_base == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    assert dep.api_key is not None and json.loads(dep.api_key)["region"] == "eu-west-1"
    moved = {**kept, "config": {**kept["config"], "deployments": [
        {**kept["config"]["deployments"][0], "region": "us-west-2"}]}}  # fmt: skip
    assert (await client.post("/admin/model/save", json=moved, headers=ADMIN)).status_code == 200
    entry = snapshot.get("br-dep")
    assert entry is not None
    (dep,) = entry.deployments
    assert dep.api_base == "https://bedrock-runtime.us-west-2.amazonaws.com"
    assert dep.api_key is not None and json.loads(dep.api_key) == {
        "region": "us-west-2", "accessKeyId": "AKID-DEP", "secretAccessKey": "dep-aws-secret"
    }  # fmt: skip


async def test_a_credential_outside_the_secret_fields_is_refused(
    admin_client: tuple[httpx.AsyncClient, CatalogSnapshot],
) -> None:
    """The extra config is kept in clear and listed: a key named like a credential is refused."""
    client, _ = admin_client
    base = {"base_url": "http://sim:8090/v1", "model": "m"}
    for extra, param in (
        ({"client_secret": "x"}, "config.client_secret"),
        ({"guardrail": {"authToken": "x"}}, "config.guardrail.authToken"),
        ({"accessKeyId": "AKID"}, "config.accessKeyId"),  # Bedrock's only for bedrock-converse
    ):
        save = {"name": "leaky", "provider": "openai-compatible", "config": {**base, **extra}}
        r = await client.post("/admin/model/save", json=save, headers=ADMIN)
        assert (r.status_code, r.json()["error"]["param"]) == (400, param), r.text
    listed = await client.get("/admin/model/list?q=leaky", headers=ADMIN)
    assert listed.json()["total"] == 0
