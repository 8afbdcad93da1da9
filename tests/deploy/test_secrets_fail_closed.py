"""Each service refuses a production start on its development-default secrets, naming each variable,
before it touches a database (docs/architecture.md, "Secrets"); deploy/k8s runs in production and
gives every service each secret it checks, from the Secret template."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from kustomize_loader import build
from test_k8s_manifests import K8S, _of_kind, secret_example

# what each Deployment's process checks at start (its main calls tollgate.common.secret_policy.enforce)
CHECKED = {
    "gateway": ["GATEWAY_SECRET_KEY"],
    "auth": ["AUTH_KEY_PEPPER", "AUTH_JWT_SECRET", "ADMIN_API_KEY"],
    "billing": ["BILLING_ALERTS_SECRET_KEY"],
    "billing-worker": ["BILLING_ALERTS_SECRET_KEY"],
    "analytics": ["ANALYTICS_SECRET_KEY"],
}
ENTRY = {
    "gateway": "from tollgate.gateway.main import main; asyncio.run(main())",
    "auth": "from tollgate.auth.main import main; asyncio.run(main())",
    "billing": "from tollgate.billing.main import main; asyncio.run(main())",
    "billing-worker": "from tollgate.billing.main import worker_main; asyncio.run(worker_main())",
    "analytics": "from tollgate.analytics.main import main; asyncio.run(main())",
}


@pytest.mark.parametrize("service", sorted(ENTRY))
def test_a_production_start_on_default_secrets_stops_naming_them(service: str) -> None:
    prefixes = ("GATEWAY_", "AUTH_", "BILLING_", "ADMIN_", "ANALYTICS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    # nowhere to connect: the check must come before any database, Redis or Kafka is tried
    env |= {"TOLLGATE_ENV": "production", "ADMIN_API_KEY": "short"}
    proc = subprocess.run(
        [sys.executable, "-c", f"import asyncio; {ENTRY[service]}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    refusal = [line for line in proc.stderr.splitlines() if "refusing to start with weak secrets" in line]
    assert refusal, proc.stderr[-2000:]
    for variable in CHECKED[service]:
        if variable != "ADMIN_API_KEY" or service == "auth":
            assert variable in refusal[-1], (variable, refusal[-1])
    assert "short" not in refusal[-1].split(":", 1)[-1].replace("shorter", "")  # no value is shown


def test_kubernetes_runs_in_production_and_gives_each_service_the_secrets_it_checks() -> None:
    docs: list[dict[str, Any]] = build(K8S / "base")
    assert _of_kind(docs, "ConfigMap")["tollgate-config"]["data"]["TOLLGATE_ENV"] == "production"
    secret = secret_example()["stringData"]
    for name, variables in CHECKED.items():
        container = _of_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]["containers"][0]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"]}
        for variable in variables:
            assert variable in refs, (name, variable)
            assert refs[variable] in secret, (name, variable)
    local = _of_kind(build(K8S / "overlays" / "local"), "ConfigMap")["tollgate-config"]["data"]
    assert local["TOLLGATE_ENV"] == "development"  # a laptop cluster runs on the template's placeholders
