"""deploy/helm/tollgate: `helm lint` passes, `helm template` validates against the Kubernetes schemas,
renders the same resources as the kustomize base, and its values (image, replicas, Secret, env,
production toggles) reach every place they should. `make tools` installs helm from the Go proxy."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kustomize_loader import build

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "tollgate"
K8S_VERSION = kubernetes_validate.utils.latest_version()
NAMESPACE = "tollgate"

Doc = dict[str, Any]


def _helm() -> str:
    for candidate in (os.environ.get("HELM", ""), str(ROOT / ".local" / "tools" / "bin" / "helm"), "helm"):
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    raise RuntimeError("helm is not installed: run `make tools` (or .ci/run)")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_helm(), *args], capture_output=True, text=True, check=False)


def render(*sets: str) -> list[Doc]:
    args = ["template", "tollgate", str(CHART), "--namespace", NAMESPACE, "--kube-version", K8S_VERSION]
    for value in sets:
        args += ["--set", value]
    result = _run(*args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def _key(doc: Doc) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def _containers(docs: list[Doc]) -> list[Doc]:
    found = []
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            spec = doc["spec"]["template"]["spec"]
            found += spec.get("initContainers", []) + spec["containers"]
    return found


def test_helm_lint_passes() -> None:
    result = _run("lint", "--strict", str(CHART), "--kube-version", K8S_VERSION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rendered_resource_is_valid_for_kubernetes_strictly() -> None:
    docs = render()
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_the_chart_renders_what_the_kustomize_base_does() -> None:
    """Same kinds and names, and the same objects field for field; the release's namespace is made
    by `helm install --create-namespace`, and the migrate Job runs as a Helm hook."""
    chart = {_key(d): d for d in render()}
    base = {_key(d): d for d in build(ROOT / "deploy" / "k8s" / "base")}
    assert set(chart) == set(base) - {("Namespace", NAMESPACE)}
    for key, doc in chart.items():
        metadata = dict(doc["metadata"])
        annotations = metadata.pop("annotations", None)
        if key == ("Job", "migrate"):
            assert annotations == {
                "helm.sh/hook": "post-install,pre-upgrade",
                "helm.sh/hook-delete-policy": "before-hook-creation",
            }
        else:
            assert annotations is None, key
        assert {**doc, "metadata": metadata} == base[key], f"{key} differs from deploy/k8s/base"


def test_image_secret_and_env_values_reach_every_pod() -> None:
    docs = render(
        "image.registry=registry.example.com",
        "image.tag=1.4.2",
        "image.pullPolicy=IfNotPresent",
        "secrets.name=tollgate-prod",
        "tollgateEnv=development",
        "config.GATEWAY_LOG_LEVEL=DEBUG",
    )
    containers = _containers(docs)
    assert containers
    for container in containers:
        assert container["image"].startswith("registry.example.com/tollgate/"), container["name"]
        assert container["image"].endswith(":1.4.2") and container["imagePullPolicy"] == "IfNotPresent"
        for env in container.get("env", []):
            if "valueFrom" in env:
                assert env["valueFrom"]["secretKeyRef"]["name"] == "tollgate-prod", env["name"]
    config = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}["tollgate-config"]["data"]
    assert config["TRAINING_K8S_IMAGE"] == "registry.example.com/tollgate/training:1.4.2"
    assert config["TOLLGATE_ENV"] == "development" and config["GATEWAY_LOG_LEVEL"] == "DEBUG"
    assert config["TRAINING_K8S_NAMESPACE"] == NAMESPACE


def test_replicas_autoscaling_and_production_toggles() -> None:
    docs = render(
        "replicas.auth=4",
        "autoscaling.gateway.maxReplicas=20",
        "networkPolicies.enabled=false",
        "podDisruptionBudgets.enabled=false",
        "migrations.job=false",
        "externalServices.enabled=false",
    )
    kinds = {d["kind"] for d in docs}
    assert not {"NetworkPolicy", "PodDisruptionBudget", "Job"} & kinds
    assert not [d for d in docs if d["kind"] == "Service" and d["spec"].get("type") == "ExternalName"]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert deployments["auth"]["spec"]["replicas"] == 4
    [hpa] = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["spec"]["maxReplicas"] == 20


def test_an_unknown_environment_is_refused_with_a_clear_error() -> None:
    result = _run(
        "template", "tollgate", str(CHART), "--kube-version", K8S_VERSION, "--set", "tollgateEnv=prod"
    )
    assert result.returncode != 0
    assert "tollgateEnv must be development or production" in result.stderr
