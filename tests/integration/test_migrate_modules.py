"""`python -m tollgate.<service>.migrate`, what deploy/k8s's `migrate` Job runs, against the stack's
real databases: each exits 0 with its database at head (already there: the services migrated on
start, so a second run must be a no-op, as a re-run Job is), and <P>RUN_MIGRATIONS=false is the one
switch every service reads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import service_db

SERVICES = ("gateway", "auth", "billing", "analytics", "training")


@pytest.mark.parametrize("service", SERVICES)
def test_the_migrate_module_brings_its_database_to_head_and_is_idempotent(
    config: StackConfig, service: str
) -> None:
    env = config.service_env(service)
    with service_db(config, service) as conn:
        before = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    proc = subprocess.run(
        [sys.executable, "-m", f"tollgate.{service}.migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with service_db(config, service) as conn:
        after = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert after == before and len(after) == 1  # at head already: nothing to do, nothing broken


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_reads_the_same_switch(service: str) -> None:
    prefix = service.upper() + "_"
    module = {"training": "tollgate.training.config"}.get(service, f"tollgate.{service}.config")
    code = (
        f"import os; os.environ['{prefix}RUN_MIGRATIONS'] = 'false'; import {module} as c; "
        "cls = next(v for k, v in vars(c).items() if k.endswith('Settings') and k != 'ServiceSettings' "
        "and isinstance(v, type)); print(cls().run_migrations)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr[-2000:]
