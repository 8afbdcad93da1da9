"""The Kubernetes executor: its batch/v1 Job manifests validate against Kubernetes' schemas, map
SloughGPT's resources onto requests, limits, GPUs and a node selector, and the executor drives the
API (create, status, delete) through the client interface."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest

from tollgate.training.config import TrainingSettings
from tollgate.training.domain import Resources
from tollgate.training.worker.kubernetes import KubernetesExecutor, job_manifest, k8s_name

K8S_VERSION = kubernetes_validate.utils.latest_version()
SETTINGS = TrainingSettings(k8s_namespace="tollgate", k8s_image="tollgate/training:1.2.3")


def test_job_pods_read_the_database_url_from_the_secret_or_only_the_roles_password() -> None:
    def database_env(settings: TrainingSettings) -> list[dict[str, Any]]:
        env = job_manifest(settings, "ftjob-1", 1, Resources())["spec"]["template"]["spec"]["containers"][0]
        return [e for e in env["env"] if e["name"].startswith("TRAINING_DATABASE_")]

    assert database_env(SETTINGS) == [
        {
            "name": "TRAINING_DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "tollgate-secrets", "key": "TRAINING_DATABASE_URL"}},
        }
    ]
    # production overlay: the URL comes with the ConfigMap, the password from the role's Secret
    production = TrainingSettings(k8s_database_password_secret="tollgate-db-training")
    assert database_env(production) == [
        {
            "name": "TRAINING_DATABASE_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "tollgate-db-training", "key": "password"}},
        }
    ]


def test_job_pods_keep_freed_memory_unless_turned_off_and_local_jobs_too() -> None:
    from tollgate.training.worker.main import job_environment

    def tunables(settings: TrainingSettings) -> list[str]:
        env = job_manifest(settings, "ftjob-1", 1, Resources())["spec"]["template"]["spec"]["containers"][0]
        return [e["value"] for e in env["env"] if e["name"] == "GLIBC_TUNABLES"]

    assert tunables(SETTINGS) == [SETTINGS.job_malloc_tunables]
    assert "glibc.malloc.mmap_max=0" in SETTINGS.job_malloc_tunables
    assert tunables(TrainingSettings(job_malloc_tunables="")) == []
    # a local job process: the worker's environment plus the tunables, an operator's own kept
    assert job_environment(SETTINGS, {"PATH": "/bin"}) == {
        "PATH": "/bin",
        "GLIBC_TUNABLES": SETTINGS.job_malloc_tunables,
    }
    assert job_environment(SETTINGS, {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) == {
        "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"
    }
    assert "GLIBC_TUNABLES" not in job_environment(TrainingSettings(job_malloc_tunables=""), {})


@pytest.mark.parametrize(
    "resources",
    [
        Resources(),
        Resources(cpu_cores=4, memory_gb=16),
        Resources(cpu_cores=0.5, memory_gb=1.5, gpu_count=2, gpu_type="V100"),
    ],
)
def test_manifests_are_valid_kubernetes_jobs(resources: Resources) -> None:
    manifest = job_manifest(SETTINGS, "ftjob-0123456789abcdef01234567", 2, resources)
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    assert manifest["metadata"]["name"] == "train-ftjob-0123456789abcdef01234567-2"
    spec = manifest["spec"]
    assert spec["backoffLimit"] == 0  # retries are leases, never Kubernetes restarts
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "training-job"
    container = pod["containers"][0]
    assert container["image"] == "tollgate/training:1.2.3"
    assert container["args"] == ["--job-id", "ftjob-0123456789abcdef01234567", "--attempt", "2"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "training-data"


def test_resources_map_to_requests_limits_and_gpus() -> None:
    gpu = job_manifest(
        SETTINGS, "ftjob-a", 1, Resources(cpu_cores=0.5, memory_gb=1.5, gpu_count=2, gpu_type="V100")
    )
    pod = gpu["spec"]["template"]["spec"]
    res = pod["containers"][0]["resources"]
    assert res["requests"] == {"cpu": "500m", "memory": "1536Mi", "nvidia.com/gpu": "2"}
    assert res["limits"] == {"memory": "1536Mi", "nvidia.com/gpu": "2"}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "V100"}
    cpu = job_manifest(SETTINGS, "ftjob-a", 1, Resources(cpu_cores=4, memory_gb=16))
    res = cpu["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res == {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "16Gi"}}
    assert "nodeSelector" not in cpu["spec"]["template"]["spec"]
    default = job_manifest(SETTINGS, "ftjob-a", 1, Resources())["spec"]["template"]["spec"]["containers"][0]
    assert default["resources"]["requests"] == {"cpu": "1", "memory": "4Gi"}


def test_names_fit_dns_labels() -> None:
    name = k8s_name("ftjob-" + "f" * 80, 12)
    assert len(name) <= 63 and not name.endswith("-")


class FakeBatchApi:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str, str]] = []
        self.status: dict[str, Any] = {}

    def create_namespaced_job(self, namespace: str, body: dict[str, Any]) -> Any:
        self.created.append(body)
        self.status[body["metadata"]["name"]] = SimpleNamespace(succeeded=None, failed=None, active=1)
        return body

    def read_namespaced_job_status(self, name: str, namespace: str) -> Any:
        return SimpleNamespace(status=self.status[name])

    def delete_namespaced_job(
        self, name: str, namespace: str, *, propagation_policy: str, grace_period_seconds: int
    ) -> Any:
        self.deleted.append((name, namespace, propagation_policy))


async def test_the_executor_creates_polls_and_deletes_jobs() -> None:
    api = FakeBatchApi()
    executor = KubernetesExecutor(SETTINGS, api)
    handle = await executor.start("ftjob-abc", 3, {"gpu_count": 1, "gpu_type": "A100"})
    assert handle.ref == "train-ftjob-abc-3" and api.created[0]["metadata"]["namespace"] == "tollgate"
    assert await executor.exit_code(handle) is None
    api.status[handle.ref] = SimpleNamespace(succeeded=1, failed=None, active=0)
    assert await executor.exit_code(handle) == 0
    api.status[handle.ref] = SimpleNamespace(succeeded=None, failed=1, active=0)
    assert await executor.exit_code(handle) == 1
    await executor.stop(handle, grace_s=10)
    assert api.deleted == [("train-ftjob-abc-3", "tollgate", "Background")]
