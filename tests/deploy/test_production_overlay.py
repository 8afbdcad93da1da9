"""deploy/k8s/overlays/production: the operator-run Kafka (Strimzi), PostgreSQL (CloudNativePG) and
Redis it adds match what the code uses, every service is pointed at them with credentials from the
right Secrets, and every connection pool fits PostgreSQL's max_connections at the HPA's maximum."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kustomize_loader import build
from sqlalchemy.engine import make_url

from tollgate.analytics.config import AnalyticsSettings
from tollgate.billing.config import BillingSettings
from tollgate.common.kafka import TOPICS
from tollgate.gateway.catalog.deployments import GROUP_ID as GATEWAY_TRAINING_GROUP
from tollgate.training.config import TrainingSettings
from tollgate.training.domain import Resources
from tollgate.training.trainer.main import JOB_DB_MAX_OVERFLOW, JOB_DB_POOL_SIZE
from tollgate.training.worker.kubernetes import job_manifest

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
PRODUCTION = K8S / "overlays" / "production"
K8S_VERSION = kubernetes_validate.utils.latest_version()
OPERATOR_GROUPS = {"kafka.strimzi.io", "postgresql.cnpg.io", "barmancloud.cnpg.io", "monitoring.coreos.com"}
# Connections kept free of the services' pools: the migrate Job (one at a time, NullPool), the
# CloudNativePG instance manager and exporter, an operator's psql session.
MAINTENANCE_CONNECTIONS = 25
# tollgate.common.runner serves HTTP, gRPC and consumers from one process per pod
PROCESSES_PER_POD = 1
SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000  # the broker default the development topics get
# the local model servers (local-models.yaml): no database, Kafka or Redis client in them
MODEL_SERVERS = {"llama", "embeddings"}

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return build(PRODUCTION)


def _of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _config(docs: list[Doc]) -> dict[str, str]:
    return _of_kind(docs, "ConfigMap")["tollgate-config"]["data"]


def _pods(docs: list[Doc]) -> dict[str, dict[str, Any]]:
    """Every container of the platform (Deployments and the migrate Job), as "<owner>/<container>"."""
    pods = {}
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job") and doc["metadata"]["name"] not in MODEL_SERVERS:
            spec = doc["spec"]["template"]["spec"]
            for container in spec.get("initContainers", []) + spec["containers"]:
                pods[f"{doc['metadata']['name']}/{container['name']}"] = {
                    "spec": spec,
                    "container": container,
                }
    return pods


def _effective_env(container: dict[str, Any], config: dict[str, str]) -> dict[str, Any]:
    """What the process sees: the ConfigMap's keys, overridden by the container's own env entries
    (a literal value, or the secretKeyRef it is read from)."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        assert source == {"configMapRef": {"name": "tollgate-config"}}
        env.update(config)
    for entry in container.get("env", []):
        env[entry["name"]] = entry.get("value", entry.get("valueFrom", {}).get("secretKeyRef"))
    return env


def _prefix(pod: str) -> str:
    owner, container = pod.split("/")
    if owner == "register-local-models":
        return "GATEWAY_"
    return (container if owner == "migrate" else owner).split("-")[0].upper() + "_"


def test_every_resource_is_valid_and_operator_resources_use_known_apis(docs: list[Doc]) -> None:
    kinds = {d["kind"] for d in docs}
    assert {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster", "Database"} <= kinds
    for doc in docs:
        group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
        if group in OPERATOR_GROUPS:  # no schema offline for custom resources: checked field by field below
            assert doc["metadata"]["namespace"] == "tollgate", doc["metadata"]["name"]
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert _config(docs)["TOLLGATE_ENV"] == "production"
    # the data stores run in the namespace: base's ExternalName placeholders are gone
    assert not [s for s in _of_kind(docs, "Service").values() if s["spec"]["type"] == "ExternalName"]


def test_kafka_runs_in_kraft_mode_and_every_topic_the_code_uses_is_declared(docs: list[Doc]) -> None:
    [(cluster, kafka)] = _of_kind(docs, "Kafka").items()
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["metadata"]["annotations"]["strimzi.io/node-pools"] == "enabled"
    config = kafka["spec"]["kafka"]["config"]
    assert config["auto.create.topics.enable"] is False
    roles: set[str] = set()
    for pool in _of_kind(docs, "KafkaNodePool").values():
        assert pool["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        roles |= set(pool["spec"]["roles"])
        assert pool["spec"]["replicas"] >= 3
    assert roles == {"controller", "broker"}
    topics = {t["spec"]["topicName"]: t for t in _of_kind(docs, "KafkaTopic").values()}
    assert set(topics) == set(TOPICS)
    for name, topic in topics.items():
        spec = topic["spec"]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == cluster, name
        assert spec["partitions"] == TOPICS[name], name  # ordering per key depends on it
        # acks=all producers keep writing with one replica down, never with only one in sync
        assert spec["replicas"] >= 3 and 2 <= spec["config"]["min.insync.replicas"] < spec["replicas"], name
        assert spec["config"]["retention.ms"] == SEVEN_DAYS_MS, name


def test_each_service_prefix_talks_to_kafka_as_its_own_scram_user(docs: list[Doc]) -> None:
    [(cluster, kafka)] = _of_kind(docs, "Kafka").items()
    [listener] = [
        li for li in kafka["spec"]["kafka"]["listeners"] if li.get("authentication", {}).get("type")
    ]
    assert listener["tls"] is True and listener["authentication"]["type"] == "scram-sha-512"
    users = _of_kind(docs, "KafkaUser")
    config = _config(docs)
    seen = set()
    for name, pod in _pods(docs).items():
        if name.startswith(("migrate/", "register-local-models/")):  # database only
            continue
        p = _prefix(name)
        env = _effective_env(pod["container"], config)
        assert env[f"{p}KAFKA_BOOTSTRAP"] == f"{cluster}-kafka-bootstrap:{listener['port']}", name
        assert env[f"{p}KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env[f"{p}KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        user = env[f"{p}KAFKA_SASL_USERNAME"]
        assert users[user]["spec"]["authentication"]["type"] == "scram-sha-512", name
        # the User Operator writes the password to a Secret named after the user
        assert env[f"{p}KAFKA_SASL_PASSWORD"] == {"name": user, "key": "password"}, name
        ca_dir = env[f"{p}KAFKA_TLS_CA_FILE"].rsplit("/", 1)[0]
        [mount] = [m for m in pod["container"]["volumeMounts"] if m["mountPath"] == ca_dir]
        [volume] = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == f"{cluster}-cluster-ca-cert", name
        seen.add(user)
    assert seen == set(users)


def test_consumer_groups_in_the_acls_are_the_ones_the_code_joins(docs: list[Doc]) -> None:
    def groups(user: str) -> set[tuple[str, str]]:
        acls = _of_kind(docs, "KafkaUser")[user]["spec"]["authorization"]["acls"]
        return {
            (a["resource"]["name"], a["resource"]["patternType"])
            for a in acls
            if a["resource"]["type"] == "group"
        }

    assert groups("tollgate-billing") == {(BillingSettings().consumer_group, "literal")}
    analytics = AnalyticsSettings()
    assert groups("tollgate-analytics") == {
        (analytics.consumer_group, "literal"),
        (analytics.chat_consumer_group, "literal"),
    }
    assert (GATEWAY_TRAINING_GROUP, "literal") in groups("tollgate-gateway")
    assert ("gateway-keys-", "prefix") in groups("tollgate-gateway")


def test_each_service_has_its_database_and_role_and_connects_to_the_primary(docs: list[Doc]) -> None:
    [(cluster_name, cluster)] = _of_kind(docs, "Cluster").items()
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d["spec"] for d in _of_kind(docs, "Database").values()}
    config = _config(docs)
    prefixes = set()
    for name, pod in _pods(docs).items():
        if name == "migrate/done":
            continue
        p = _prefix(name)
        env = _effective_env(pod["container"], config)
        url = make_url(env[f"{p}DATABASE_URL"])
        assert url.drivername == "postgresql+psycopg" and url.password is None, name
        assert (url.host, url.port) == (f"{cluster_name}-rw", 5432), name
        assert url.query["sslmode"] == "require", name  # CloudNativePG serves TLS only
        database = databases[url.database]
        assert database["cluster"]["name"] == cluster_name and database["owner"] == url.username, name
        role = roles[url.username]
        assert role["login"] is True and role["ensure"] == "present", name
        # the password CloudNativePG sets on the role is the one the process reads
        assert env[f"{p}DATABASE_PASSWORD"] == {"name": role["passwordSecret"]["name"], "key": "password"}
        prefixes.add(p)
    assert prefixes == {"GATEWAY_", "AUTH_", "BILLING_", "ANALYTICS_", "TRAINING_"}
    assert len(databases) == len(roles) == len(prefixes)


def test_redis_runs_with_persistence_and_the_services_share_its_password(docs: list[Doc]) -> None:
    redis = _of_kind(docs, "StatefulSet")["redis"]
    service = _of_kind(docs, "Service")["redis"]
    pod = redis["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    container = pod["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"  # holds are never evicted
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    [server_secret] = [
        e["valueFrom"]["secretKeyRef"] for e in container["env"] if e["name"] == "REDIS_PASSWORD"
    ]
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    config = _config(docs)
    users = 0
    for name, pod_ in _pods(docs).items():
        p = _prefix(name)
        env = _effective_env(pod_["container"], config)
        if f"{p}REDIS_PASSWORD" in env:
            url = make_url(env[f"{p}REDIS_URL"])
            assert (url.host, url.port or 6379) == ("redis", service["spec"]["ports"][0]["port"]), name
            assert env[f"{p}REDIS_PASSWORD"] == server_secret, name
            users += 1
    assert users == 4  # gateway, auth, billing, billing-worker


def _pods_at_most(deployment: Doc, hpas: dict[str, Doc]) -> int:
    """Pods a Deployment can run at once: the HPA's maximum (or its replicas), plus the surge pod
    of a rolling update."""
    name = deployment["metadata"]["name"]
    hpa = next((h for h in hpas.values() if h["spec"]["scaleTargetRef"]["name"] == name), None)
    replicas = hpa["spec"]["maxReplicas"] if hpa else deployment["spec"]["replicas"]
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate", name
    return replicas + int(strategy["rollingUpdate"]["maxSurge"])


def test_every_connection_pool_fits_max_connections_at_the_hpa_maximum(docs: list[Doc]) -> None:
    """The sum over Deployments of pods * processes * (pool_size + max_overflow), plus the training job
    pods each worker may run, stays within max_connections less the superuser reserve and the
    maintenance margin; and each role's connectionLimit holds its own services' share."""
    [cluster] = _of_kind(docs, "Cluster").values()
    parameters = cluster["spec"]["postgresql"]["parameters"]
    budget = (
        int(parameters["max_connections"])
        - int(parameters["superuser_reserved_connections"])
        - MAINTENANCE_CONNECTIONS
    )
    limits = {r["name"]: r["connectionLimit"] for r in cluster["spec"]["managed"]["roles"]}
    config = _config(docs)
    hpas = _of_kind(docs, "HorizontalPodAutoscaler")
    demand: dict[str, int] = dict.fromkeys(limits, 0)
    for name, deployment in _of_kind(docs, "Deployment").items():
        if name in MODEL_SERVERS:
            continue
        p = name.split("-")[0].upper() + "_"
        env = _effective_env(deployment["spec"]["template"]["spec"]["containers"][0], config)
        per_process = int(env[f"{p}DB_POOL_SIZE"]) + int(env[f"{p}DB_MAX_OVERFLOW"])
        pods = _pods_at_most(deployment, hpas)
        role = make_url(env[f"{p}DATABASE_URL"]).username
        demand[role] += pods * PROCESSES_PER_POD * per_process
        if name == "training-worker":  # each worker runs up to this many job pods of its own
            jobs = int(env["TRAINING_MAX_CONCURRENT_JOBS"])
            demand[role] += pods * jobs * (JOB_DB_POOL_SIZE + JOB_DB_MAX_OVERFLOW)
    for role, used in demand.items():
        assert 0 < used <= limits[role], (role, used, limits[role])
    assert sum(demand.values()) <= sum(limits.values()) <= budget, (demand, limits, budget)


def test_training_job_pods_read_the_role_password_like_the_worker(docs: list[Doc]) -> None:
    config = _config(docs)
    settings = TrainingSettings(
        **{k.removeprefix("TRAINING_").lower(): v for k, v in config.items() if k.startswith("TRAINING_K8S_")}
    )
    manifest = job_manifest(settings, "ftjob-0123456789abcdef01234567", 1, Resources(cpu_cores=2))
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    env = _effective_env(container, config)
    worker = _effective_env(_pods(docs)["training-worker/training-worker"]["container"], config)
    assert env["TRAINING_DATABASE_URL"] == worker["TRAINING_DATABASE_URL"]
    assert env["TRAINING_DATABASE_PASSWORD"] == worker["TRAINING_DATABASE_PASSWORD"]
    assert make_url(env["TRAINING_DATABASE_URL"]).password is None


def test_the_data_stores_can_be_applied_first_by_their_label(docs: list[Doc]) -> None:
    """docs/operations.md, "Deploy": `kubectl apply -k ... -l tollgate.dev/data-store=true` brings up
    PostgreSQL, Kafka and Redis (and their openings in the NetworkPolicies) before the platform."""
    labelled = {
        (d["kind"], d["metadata"]["name"])
        for d in docs
        if (d["metadata"].get("labels") or {}).get("tollgate.dev/data-store") == "true"
    }
    operator = {
        (d["kind"], d["metadata"]["name"]) for d in docs if d["apiVersion"].split("/")[0] in OPERATOR_GROUPS
    }
    operator -= {
        (d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in ("PodMonitor", "PrometheusRule")
    }
    redis = {
        ("StatefulSet", "redis"),
        ("Service", "redis"),
        ("NetworkPolicy", "redis"),
        ("NetworkPolicy", "postgres"),
    }
    assert labelled == operator | redis


def test_the_platform_secret_holds_no_connection_url_in_production(docs: list[Doc]) -> None:
    """Credentials of the data stores come from their own Secrets; tollgate-secrets keeps only the
    platform's keys, every required one of them in the example."""
    secret = build(K8S / "secret-example")[0]["stringData"]
    for name, pod in _pods(docs).items():
        for entry in pod["container"].get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref and ref["name"] == "tollgate-secrets":
                # optional references (previous keys kept during a rotation) may be absent
                known = ref["key"] in secret or ref.get("optional") is True
                assert known and not ref["key"].endswith("_URL"), (name, ref["key"])
