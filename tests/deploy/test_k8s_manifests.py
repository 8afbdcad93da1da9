"""deploy/k8s: kustomize output validates offline against the Kubernetes schemas and follows our rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kustomize_loader import build

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
TARGETS = {"base": K8S / "base", "local": K8S / "overlays" / "local"}
SERVICES = {"gateway": 8080, "auth": 8081, "billing": 8082, "analytics": 8083, "training": 8084}
GRPC = {"auth": 50051, "billing": 50052}
# billing's hold marks port (the gateways write length-prefixed frames to it)
OTHER_PORTS = {"billing": {"marks": 50053}}
# processes with a Deployment but no Service: billing's usage consumer, from billing's image, and
# the training worker, from training's image
WORKERS = {"billing-worker": 8085, "training-worker": 8086}
HTTP_PORTS = SERVICES | WORKERS
# the local model servers (local-models.yaml, checked in test_local_models_k8s.py): no database, no
# /metrics, their own health route
MODEL_SERVERS = {"llama": 8091, "embeddings": 8092}
# Prometheus' /metrics of every process, on a port of its own (never routed by a Service)
METRICS_PORTS = {name: port + 1100 for name, port in HTTP_PORTS.items()}
K8S_VERSION = kubernetes_validate.utils.latest_version()


@pytest.fixture(scope="module", params=sorted(TARGETS))
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return build(TARGETS[request.param])


def _of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _platform(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services' and workers' Deployments (the model servers left out)."""
    return {n: d for n, d in _of_kind(docs, "Deployment").items() if n not in MODEL_SERVERS}


def secret_example() -> dict[str, Any]:
    """The Secret the Deployments read, from its example (base ships no Secret)."""
    return _of_kind(build(K8S / "secret-example"), "Secret")["tollgate-secrets"]


def test_every_manifest_is_valid_for_kubernetes_strictly(manifests: list[dict[str, Any]]) -> None:
    assert manifests
    for doc in manifests:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_everything_lives_in_the_tollgate_namespace(manifests: list[dict[str, Any]]) -> None:
    assert list(_of_kind(manifests, "Namespace")) == ["tollgate"]
    for doc in manifests:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "tollgate", doc["metadata"]["name"]


def test_each_service_has_a_deployment_and_service_with_its_ports(manifests: list[dict[str, Any]]) -> None:
    deployments = _of_kind(manifests, "Deployment")
    services = _of_kind(manifests, "Service")
    assert set(deployments) == set(HTTP_PORTS) | set(MODEL_SERVERS)
    assert not set(WORKERS) & set(services)
    worker = deployments["billing-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["image"] == "tollgate/billing:latest"
    assert worker["command"] == ["/app/.venv/bin/tollgate-billing-worker"]
    assert {p["name"]: p["containerPort"] for p in worker["ports"]} == {"http": 8085, "metrics": 9185}
    for name, http_port in SERVICES.items():
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == f"tollgate/{name}:latest"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        expected = (
            {"http": http_port} | ({"grpc": GRPC[name]} if name in GRPC else {}) | OTHER_PORTS.get(name, {})
        )
        assert ports == expected | {"metrics": METRICS_PORTS[name]}
        svc_ports = {p["name"]: p["port"] for p in services[name]["spec"]["ports"]}
        assert svc_ports == expected
        assert services[name]["spec"]["selector"] == deployments[name]["spec"]["selector"]["matchLabels"]


def test_deployments_have_probes_resources_and_scrape_annotations(manifests: list[dict[str, Any]]) -> None:
    for name, deployment in _platform(manifests).items():
        template = deployment["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/path"] == "/metrics", name
        assert annotations["prometheus.io/port"] == str(METRICS_PORTS[name]), name
        for container in template["spec"]["containers"]:
            # liveness and startup ask the process only; readiness asks its dependencies too
            for probe, path in (
                ("startupProbe", "/livez"),
                ("livenessProbe", "/livez"),
                ("readinessProbe", "/readyz"),
            ):
                assert container[probe]["httpGet"]["path"] == path, (name, probe)
                assert container[probe]["httpGet"]["port"] in ("http", HTTP_PORTS[name]), (name, probe)
            startup = container["startupProbe"]
            assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, name  # migrations
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)


def test_env_comes_from_the_configmap_and_secret_that_exist(manifests: list[dict[str, Any]]) -> None:
    config = _of_kind(manifests, "ConfigMap")["tollgate-config"]["data"]
    secret = secret_example()["stringData"]
    for name, deployment in _platform(manifests).items():
        prefix = name.split("-")[0].upper() + "_"
        port_key = name.upper().replace("-", "_") + "_HTTP_PORT"
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["envFrom"] == [{"configMapRef": {"name": "tollgate-config"}}]
        # Bind on all interfaces in a pod (the code's default is loopback).
        assert config[f"{prefix}HTTP_HOST"] == "0.0.0.0"
        assert config[port_key] == str(HTTP_PORTS[name])
        assert config[port_key.replace("_HTTP_", "_METRICS_")] == str(METRICS_PORTS[name])
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        assert f"{prefix}DATABASE_URL" in refs, name
        for ref in refs.values():
            assert ref["name"] == "tollgate-secrets"
            # optional: a rotation's previous keys, in the Secret only while one is under way
            assert ref["key"] in secret or ref.get("optional") is True, ref


def test_base_ships_no_secret_and_the_example_holds_placeholders_only() -> None:
    """Applying base never creates or overwrites credentials; the example (used by the local
    overlay) holds placeholders that a production start refuses."""
    assert "Secret" not in {d["kind"] for d in build(K8S / "base")}
    assert "tollgate-secrets" in _of_kind(build(K8S / "overlays" / "local"), "Secret")
    secret = secret_example()
    assert "data" not in secret
    for key, value in secret["stringData"].items():
        assert "CHANGE_ME" in value, key


def test_pods_run_hardened_with_their_own_identity(manifests: list[dict[str, Any]]) -> None:
    """Non-root, read-only root filesystem (scratch space on /tmp only), no API token unless needed."""
    accounts = _of_kind(manifests, "ServiceAccount")
    for name, deployment in _of_kind(manifests, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        account = pod["serviceAccountName"]
        assert account == name and account in accounts, name
        if name != "training-worker":  # it creates the training Jobs through the API (training-rbac)
            assert pod["automountServiceAccountToken"] is False, name
            assert accounts[account]["automountServiceAccountToken"] is False, name
        container = pod["containers"][0]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False, (
            name
        )
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "512Mi"}} in pod["volumes"], name


def test_auth_and_billing_survive_a_drain_and_spread_over_nodes(manifests: list[dict[str, Any]]) -> None:
    budgets = _of_kind(manifests, "PodDisruptionBudget")
    for name in ("gateway", "auth", "billing"):
        assert budgets[name]["spec"]["maxUnavailable"] == 1, name
        assert budgets[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        pod = _of_kind(manifests, "Deployment")[name]["spec"]["template"]["spec"]
        keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}, name


def test_only_the_gateway_is_reachable_from_outside_the_platform(manifests: list[dict[str, Any]]) -> None:
    policies = _of_kind(manifests, "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    public = policies["gateway-public"]["spec"]
    assert public["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "gateway"}}
    assert public["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    internal = policies["platform-internal"]["spec"]
    [names] = internal["podSelector"]["matchExpressions"]
    assert set(names["values"]) == set(SERVICES) - {"gateway"}
    assert internal["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "tollgate"}}}]}
    ]
    scrape = policies["metrics-scrape"]["spec"]["ingress"][0]
    assert scrape["ports"] == [{"port": "metrics", "protocol": "TCP"}]  # the named port, nothing else
    for deployment in _of_kind(manifests, "Deployment").values():  # every pod carries the label
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "tollgate"


def test_migrations_run_as_one_job_and_no_pod_migrates_on_start(manifests: list[dict[str, Any]]) -> None:
    config = _of_kind(manifests, "ConfigMap")["tollgate-config"]["data"]
    secret = secret_example()["stringData"]
    job = _of_kind(manifests, "Job")["migrate"]["spec"]["template"]["spec"]
    migrated = []
    for init in job["initContainers"]:
        service = init["name"]
        prefix = service.upper() + "_"
        assert config[f"{prefix}RUN_MIGRATIONS"] == "false", service  # the same switch for every service
        assert init["image"].startswith(f"tollgate/{service}:"), service
        assert init["command"] == ["/app/.venv/bin/python", "-m", f"tollgate.{service}.migrate"]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in init["env"]}
        assert refs[f"{prefix}DATABASE_URL"] in secret, service
        migrated.append(service)
    assert sorted(migrated) == sorted(SERVICES)  # every database, each from its own image
    assert job["restartPolicy"] == "OnFailure" and job["automountServiceAccountToken"] is False


def test_images_are_set_in_one_place() -> None:
    """Every image a Deployment runs is named in base's `images:`, so an overlay pins registry and tag
    once; the training job pods use the training image too."""
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    pinned = {entry["name"] for entry in kustomization["images"]}
    base = build(K8S / "base")
    for name, deployment in _of_kind(base, "Deployment").items():
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.rsplit(":", 1)[0] in pinned, (name, image)
    job_image = _of_kind(base, "ConfigMap")["tollgate-config"]["data"]["TRAINING_K8S_IMAGE"]
    assert job_image.rsplit(":", 1)[0] == "tollgate/training"


def test_the_gateway_keeps_answering_while_it_leaves_its_service(manifests: list[dict[str, Any]]) -> None:
    pod = _of_kind(manifests, "Deployment")["gateway"]["spec"]["template"]["spec"]
    pause = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    # the pause, the HTTP drain (tollgate.common.runner) and the shutdown hooks fit the grace period
    assert pause > 0 and pause + 20 < pod["terminationGracePeriodSeconds"]


def test_gateway_has_an_hpa_and_a_disruption_budget(manifests: list[dict[str, Any]]) -> None:
    hpa = _of_kind(manifests, "HorizontalPodAutoscaler")["gateway"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    pdb = _of_kind(manifests, "PodDisruptionBudget")["gateway"]["spec"]
    gateway = _of_kind(manifests, "Deployment")["gateway"]
    assert pdb["selector"]["matchLabels"] == gateway["spec"]["selector"]["matchLabels"]


def test_external_dependencies_are_referenced_not_deployed(manifests: list[dict[str, Any]]) -> None:
    services = _of_kind(manifests, "Service")
    for name in ("postgres", "redis", "kafka"):
        assert services[name]["spec"]["type"] == "ExternalName"
    assert not _of_kind(manifests, "StatefulSet")


def test_local_overlay_runs_one_replica_of_everything_from_local_images() -> None:
    docs = build(TARGETS["local"])
    for name, deployment in _of_kind(docs, "Deployment").items():
        assert deployment["spec"]["replicas"] == 1, name
        assert deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert _of_kind(docs, "HorizontalPodAutoscaler")["gateway"]["spec"]["minReplicas"] == 1


def test_no_service_or_ingress_routes_to_a_metrics_port(manifests: list[dict[str, Any]]) -> None:
    """/metrics is for Prometheus only: scraped on each pod's `metrics` port, never behind a Service."""
    metrics_numbers = set(METRICS_PORTS.values())
    for name, service in _of_kind(manifests, "Service").items():
        for port in service["spec"].get("ports", []):
            assert port.get("name") != "metrics", name
            assert port.get("targetPort") not in ("metrics", *metrics_numbers), name
            assert port["port"] not in metrics_numbers, name
    for name, ingress in _of_kind(manifests, "Ingress").items():
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                port = path["backend"]["service"]["port"]
                assert port.get("name") != "metrics" and port.get("number") not in metrics_numbers, name


def test_deletion_patches_stand_alone_so_kubectl_apply_k_renders_them() -> None:
    """docs/operations.md deploys with `kubectl apply -k`: kubectl 1.32's embedded kustomize (v5.5)
    panics on a patch file that holds `$patch: delete` among other documents (v5.7 does not), so
    each deletion is its own patch file."""
    k8s = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
    checked = 0
    for kustomization in k8s.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        for patch in spec.get("patches", []):
            if "path" not in patch:
                continue
            docs = [d for d in yaml.safe_load_all((kustomization.parent / patch["path"]).read_text()) if d]
            if any(d.get("$patch") == "delete" for d in docs):
                checked += 1
                assert len(docs) == 1, f"{kustomization.parent.name}/{patch['path']}: split the deletion out"
    assert checked >= 2, "the production overlay deletes base's postgres and kafka Services"
