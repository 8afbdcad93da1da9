"""The Kubernetes executor: each attempt of a job is a batch/v1 Job running the training image's
`tollgate-training-job --job-id <id> --attempt <n>`, with the job's `resources` as its requests and
limits (GPUs as `nvidia.com/gpu`, the GPU type as a node selector), the data volume mounted and
the platform's config and secrets in its environment. Retries are ours (leases), so backoffLimit 0.

`job_manifest` is pure (validated with kubernetes-validate in the tests); `KubernetesExecutor`
talks to the API server through the official client's BatchV1Api (in a thread: it is blocking).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any, Protocol

from tollgate.training.config import TrainingSettings
from tollgate.training.domain import Resources
from tollgate.training.worker.executors import Handle

LABEL_JOB = "tollgate.dev/training-job"
_DEFAULT_REQUESTS = {"cpu": "1", "memory": "4Gi"}


def k8s_name(job_id: str, attempt: int) -> str:
    """A DNS-1123 name (<= 63 characters) unique per attempt."""
    return f"train-{re.sub(r'[^a-z0-9-]', '-', job_id.lower())}-{attempt}"[:63].rstrip("-")


def _cpu(cores: float) -> str:
    return str(int(cores)) if cores == int(cores) else f"{round(cores * 1000)}m"


def _memory(gb: float) -> str:
    return f"{int(gb)}Gi" if gb == int(gb) else f"{round(gb * 1024)}Mi"


def resource_requirements(resources: Resources, gpu_resource: str) -> dict[str, dict[str, str]]:
    requests = dict(_DEFAULT_REQUESTS)
    if resources.cpu_cores:
        requests["cpu"] = _cpu(resources.cpu_cores)
    if resources.memory_gb:
        requests["memory"] = _memory(resources.memory_gb)
    limits = {"memory": requests["memory"]}  # CPU is not limited (throttling only slows training)
    if resources.gpu_count:
        requests[gpu_resource] = str(resources.gpu_count)
        limits[gpu_resource] = str(resources.gpu_count)
    return {"requests": requests, "limits": limits}


def _database_env(settings: TrainingSettings) -> dict[str, Any]:
    """The job's database credentials: the whole URL from the platform Secret, or (production
    overlay) only the password from the role's own Secret, the URL coming with the ConfigMap."""
    if settings.k8s_database_password_secret:
        ref = {"name": settings.k8s_database_password_secret, "key": "password"}
        return {"name": "TRAINING_DATABASE_PASSWORD", "valueFrom": {"secretKeyRef": ref}}
    ref = {"name": settings.k8s_secret, "key": "TRAINING_DATABASE_URL"}
    return {"name": "TRAINING_DATABASE_URL", "valueFrom": {"secretKeyRef": ref}}


def job_manifest(
    settings: TrainingSettings, job_id: str, attempt: int, resources: Resources
) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": "training-job",
        "app.kubernetes.io/part-of": "tollgate",
        LABEL_JOB: job_id,
    }
    container: dict[str, Any] = {
        "name": "train",
        "image": settings.k8s_image,
        "command": ["/app/.venv/bin/tollgate-training-job"],
        "args": ["--job-id", job_id, "--attempt", str(attempt)],
        "envFrom": [{"configMapRef": {"name": settings.k8s_config_map}}],
        "env": [
            _database_env(settings),
            {"name": "TRAINING_DATA_DIR", "value": settings.k8s_data_mount},
            {"name": "TRAINING_BASE_CACHE_DIR", "value": f"{settings.k8s_data_mount}/bases"},
            {"name": "TRAINING_JOB_DETACHED", "value": "1"},
            *(
                [{"name": "GLIBC_TUNABLES", "value": settings.job_malloc_tunables}]
                if settings.job_malloc_tunables
                else []
            ),
        ],
        "resources": resource_requirements(resources, settings.k8s_gpu_resource),
        "volumeMounts": [{"name": "data", "mountPath": settings.k8s_data_mount}],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": settings.k8s_service_account,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": settings.k8s_data_claim}}],
    }
    if resources.gpu_count and resources.gpu_type:
        pod_spec["nodeSelector"] = {settings.k8s_gpu_type_label: resources.gpu_type}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": k8s_name(job_id, attempt),
            "namespace": settings.k8s_namespace,
            "labels": labels,
        },
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 3600,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


class BatchApi(Protocol):
    """The part of kubernetes.client.BatchV1Api the executor uses."""

    def create_namespaced_job(self, namespace: str, body: dict[str, Any]) -> Any: ...
    def read_namespaced_job_status(self, name: str, namespace: str) -> Any: ...
    def delete_namespaced_job(
        self, name: str, namespace: str, *, propagation_policy: str, grace_period_seconds: int
    ) -> Any: ...


def in_cluster_api() -> BatchApi:
    from kubernetes import client, config

    config.load_incluster_config()
    api: BatchApi = client.BatchV1Api()
    return api


class KubernetesExecutor:
    def __init__(self, settings: TrainingSettings, api: BatchApi) -> None:
        self._settings = settings
        self._api = api

    async def warm(self) -> None:
        return None

    async def start(self, job_id: str, attempt: int, resources: Mapping[str, object]) -> Handle:
        body = job_manifest(self._settings, job_id, attempt, Resources.from_json(dict(resources)))
        await asyncio.to_thread(self._api.create_namespaced_job, self._settings.k8s_namespace, body)
        return Handle(job_id, attempt, body["metadata"]["name"])

    async def exit_code(self, handle: Handle) -> int | None:
        job = await asyncio.to_thread(
            self._api.read_namespaced_job_status, handle.ref, self._settings.k8s_namespace
        )
        status = job.status
        if status.succeeded:
            return 0
        if status.failed:
            return 1
        return None

    async def stop(self, handle: Handle, grace_s: float) -> None:
        """Deleting the Job sends its pod SIGTERM, then SIGKILL after the grace period."""
        await asyncio.to_thread(
            self._api.delete_namespaced_job,
            handle.ref,
            self._settings.k8s_namespace,
            propagation_policy="Background",
            grace_period_seconds=int(grace_s),
        )

    async def close(self) -> None:
        return None
