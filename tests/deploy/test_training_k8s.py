"""deploy/k8s for training: the Jobs the worker's Kubernetes executor creates, built from the
ConfigMap's settings, validate and refer only to what the manifests define (service account,
volume claim, ConfigMap, Secret key); the worker's Role allows exactly what the executor calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
from kustomize_loader import build
from test_k8s_manifests import secret_example

from tollgate.training.config import TrainingSettings
from tollgate.training.domain import Resources
from tollgate.training.worker.kubernetes import job_manifest

BASE = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base"
K8S_VERSION = kubernetes_validate.utils.latest_version()


def _named(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_worker_jobs_refer_to_what_the_manifests_define() -> None:
    docs = build(BASE)
    config = _named(docs, "ConfigMap")["tollgate-config"]["data"]
    settings = TrainingSettings(
        **{k.removeprefix("TRAINING_").lower(): v for k, v in config.items() if k.startswith("TRAINING_K8S_")}
    )
    assert config["TRAINING_EXECUTOR"] == "kubernetes"
    manifest = job_manifest(
        settings,
        "ftjob-0123456789abcdef01234567",
        1,
        Resources(cpu_cores=2, memory_gb=8, gpu_count=1, gpu_type="L4"),
    )
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    pod = manifest["spec"]["template"]["spec"]
    assert manifest["metadata"]["namespace"] == "tollgate"
    assert pod["serviceAccountName"] in _named(docs, "ServiceAccount")
    assert _named(docs, "ServiceAccount")[pod["serviceAccountName"]]["automountServiceAccountToken"] is False
    claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert _named(docs, "PersistentVolumeClaim")[claim]["spec"]["accessModes"] == ["ReadWriteMany"]
    container = pod["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": "tollgate-config"}}]
    secret = secret_example()["stringData"]
    for env in container["env"]:
        if "valueFrom" in env:
            assert env["valueFrom"]["secretKeyRef"]["key"] in secret


def test_the_worker_may_manage_jobs_and_nothing_more() -> None:
    docs = build(BASE)
    worker = _named(docs, "Deployment")["training-worker"]["spec"]["template"]["spec"]
    assert worker["serviceAccountName"] == "training-worker"
    assert worker["containers"][0]["command"] == ["/app/.venv/bin/tollgate-training-worker"]
    rules = _named(docs, "Role")["training-worker"]["rules"]
    jobs = next(r for r in rules if r["resources"] == ["jobs"])
    assert jobs["apiGroups"] == ["batch"] and {"create", "get", "delete"} <= set(jobs["verbs"])
    assert all(r["apiGroups"] in (["batch"], [""]) for r in rules)
    assert not any("secrets" in r["resources"] or "*" in r["verbs"] for r in rules)
    binding = _named(docs, "RoleBinding")["training-worker"]
    assert binding["roleRef"]["name"] == "training-worker"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "training-worker", "namespace": "tollgate"}
    ]
    for name in ("training", "training-worker"):
        spec = _named(docs, "Deployment")[name]["spec"]["template"]["spec"]
        assert {"name": "data", "persistentVolumeClaim": {"claimName": "training-data"}} in spec["volumes"]
