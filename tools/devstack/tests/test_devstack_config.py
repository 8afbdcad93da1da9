"""StackConfig: ports per profile, overrides, URLs, the admin key, each service's environment."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tollgate.devstack.config import METRICS_PORT_NAME, PORT_NAMES, SERVICES, StackConfig


def make(tmp_path: Path, profile: str | None = None, **env: str) -> StackConfig:
    return StackConfig.from_env(profile=profile, environ=env, root=tmp_path)


def test_dev_is_the_default_profile_with_the_documented_ports(tmp_path: Path) -> None:
    cfg = make(tmp_path)
    assert cfg.profile == "dev"
    assert cfg.state_dir == tmp_path / ".local" / "dev"
    assert [cfg.port(n) for n in PORT_NAMES] == [
        55432, 56379, 59092, 59093, 8080, 8081, 50051, 8082, 50052, 50053, 8085, 8083, 8084, 8086, 8090, 8095,
        8091, 8092, 9180, 9181, 9182, 9185, 9183, 9184, 9186, 59094,
    ]  # fmt: skip


def test_test_profile_ports_and_state_dir(tmp_path: Path) -> None:
    cfg = make(tmp_path, "test")
    assert [cfg.port(n) for n in PORT_NAMES] == [
        25532, 26479, 29192, 29193, 18080, 18081, 21051, 18082, 21052, 21053, 18085, 18083, 18084, 18086,
        18090, 18095, 18091, 18092, 18180, 18181, 18182, 18185, 18183, 18184, 18186, 29194,
    ]  # fmt: skip
    assert cfg.state_dir == tmp_path / ".local" / "test"
    assert cfg.tuned_for_tests
    assert not make(tmp_path, "dev").tuned_for_tests


def test_profile_comes_from_tollgate_profile_env(tmp_path: Path) -> None:
    assert make(tmp_path, TOLLGATE_PROFILE="test").port("gateway") == 18080
    # an explicit argument beats the environment
    assert make(tmp_path, "dev", TOLLGATE_PROFILE="test").port("gateway") == 8080


def test_port_overrides_by_env(tmp_path: Path) -> None:
    cfg = make(tmp_path, "test", TOLLGATE_BILLING_GRPC_PORT="6000", TOLLGATE_UPSTREAM_SIM_PORT="6001")
    assert cfg.port("billing_grpc") == 6000
    assert cfg.port("upstream_sim") == 6001
    assert cfg.url("upstream_sim") == "http://127.0.0.1:6001"
    assert cfg.service_env("gateway")["GATEWAY_BILLING_GRPC_TARGET"] == "127.0.0.1:6000"
    marks_target = cfg.service_env("gateway")["GATEWAY_BILLING_MARKS_TARGET"]
    assert marks_target == f"127.0.0.1:{cfg.port('billing_marks')}"


def test_a_scratch_profile_moves_the_test_ports_by_an_offset(tmp_path: Path) -> None:
    cfg = make(tmp_path, "scratch", TOLLGATE_PORT_OFFSET="1000", TOLLGATE_GATEWAY_PORT="7000")
    assert cfg.port("postgres") == 26532 and cfg.port("billing_grpc") == 22052
    assert cfg.port("gateway") == 7000  # a single override still wins
    assert make(tmp_path, "test", TOLLGATE_PORT_OFFSET="1000").port("postgres") == 25532


def test_test_ports_stay_below_the_ephemeral_range_even_moved_by_3000(tmp_path: Path) -> None:
    """Linux hands out 32768-60999 as local ports of outgoing connections: a listener restarted
    there (the fault suite restarts every process) can find its port taken by a client socket."""
    for offset in ("0", "1000", "2000", "3000"):
        cfg = make(tmp_path, "scratch", TOLLGATE_PORT_OFFSET=offset)
        assert max(cfg.ports.values()) < 32768, (offset, cfg.ports)


def test_unknown_names_are_refused(tmp_path: Path) -> None:
    cfg = make(tmp_path)
    with pytest.raises(KeyError):
        cfg.port("mysql")
    with pytest.raises(KeyError):
        cfg.url("postgres")  # not an HTTP process
    with pytest.raises(KeyError):
        cfg.database_url("upstream_sim")
    with pytest.raises(ValueError):
        make(tmp_path, "../etc")


def test_endpoints(tmp_path: Path) -> None:
    cfg = make(tmp_path, "test")
    assert cfg.url("gateway") == "http://127.0.0.1:18080"
    assert cfg.url("llama") == "http://127.0.0.1:18091"
    assert cfg.database_url("billing") == "postgresql+psycopg://tollgate@127.0.0.1:25532/tollgate_billing"
    assert cfg.redis_url == "redis://127.0.0.1:26479/0"
    assert cfg.kafka_bootstrap == "127.0.0.1:29192"


def test_admin_key_from_env_is_used_and_not_written(tmp_path: Path) -> None:
    cfg = make(tmp_path, ADMIN_API_KEY="sk-admin-fixed")
    assert cfg.admin_api_key == "sk-admin-fixed"
    assert not (cfg.secrets_dir / "admin_api_key").exists()


def test_generated_admin_key_is_private_and_stable(tmp_path: Path) -> None:
    first = make(tmp_path, "test")
    key = first.admin_api_key
    path = first.secrets_dir / "admin_api_key"
    assert len(key) > 30
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.secrets_dir.stat().st_mode) == 0o700
    assert make(tmp_path, "test").admin_api_key == key
    assert make(tmp_path, "dev").admin_api_key != key  # one key per profile


def test_service_env_of_a_db_service(tmp_path: Path) -> None:
    env = make(tmp_path, "test", ADMIN_API_KEY="k", PATH="/bin").service_env("billing")
    assert env["PATH"] == "/bin"  # os.environ passes through
    assert env["BILLING_HTTP_PORT"] == "18082"
    assert env["BILLING_GRPC_PORT"] == "21052"
    assert env["BILLING_MARKS_PORT"] == "21053"
    assert env["BILLING_DATABASE_URL"].endswith(":25532/tollgate_billing")
    assert env["BILLING_REDIS_URL"] == "redis://127.0.0.1:26479/0"
    assert env["BILLING_KAFKA_BOOTSTRAP"] == "127.0.0.1:29192"
    assert env["BILLING_AUTH_GRPC_TARGET"] == "127.0.0.1:21051"
    assert env["BILLING_BILLING_GRPC_TARGET"] == "127.0.0.1:21052"
    assert env["ADMIN_API_KEY"] == "k"
    assert "AUTH_HTTP_PORT" not in env


def test_stack_values_win_over_inherited_environment(tmp_path: Path) -> None:
    # a shell that exported the dev stack's URL must not point the test stack at dev's database
    cfg = make(tmp_path, "test", GATEWAY_DATABASE_URL="postgresql+psycopg://x@h:1/other", ADMIN_API_KEY="k")
    assert cfg.service_env("gateway")["GATEWAY_DATABASE_URL"] == cfg.database_url("gateway")


def test_gateway_env_knows_where_to_forward(tmp_path: Path) -> None:
    env = make(tmp_path, "test", ADMIN_API_KEY="k").service_env("gateway")
    assert env["GATEWAY_AUTH_HTTP_URL"] == "http://127.0.0.1:18081"
    assert env["GATEWAY_BILLING_HTTP_URL"] == "http://127.0.0.1:18082"
    assert env["GATEWAY_ANALYTICS_HTTP_URL"] == "http://127.0.0.1:18083"
    assert env["GATEWAY_TRAINING_HTTP_URL"] == "http://127.0.0.1:18084"
    assert "GATEWAY_GRPC_PORT" not in env


def test_auth_env_carries_the_admin_key_and_grpc_port(tmp_path: Path) -> None:
    env = make(tmp_path, "test", ADMIN_API_KEY="sk-boot").service_env("auth")
    assert env["ADMIN_API_KEY"] == env["AUTH_ADMIN_API_KEY"] == "sk-boot"
    assert env["AUTH_GRPC_PORT"] == "21051"


def test_simulator_env(tmp_path: Path) -> None:
    env = make(tmp_path, "test").service_vars("upstream_sim")
    assert env["SIM_PORT"] == "18090"
    assert not any(k.startswith(("GATEWAY_", "AUTH_")) for k in env)
    assert "ADMIN_API_KEY" not in env


def test_the_feishu_simulator_and_the_gateway_pointed_at_it(tmp_path: Path) -> None:
    cfg = make(tmp_path, "test")
    env = cfg.service_vars("feishu_sim")
    assert env["FEISHU_SIM_PORT"] == "18095"
    assert not any(k.startswith("GATEWAY_") for k in env) and "ADMIN_API_KEY" not in env
    assert cfg.service_vars("gateway")["GATEWAY_FEISHU_API_BASE_URL"] == "http://127.0.0.1:18095"
    assert "feishu_sim" not in METRICS_PORT_NAME
    # a developer's stack keeps Feishu's real API (the gateway's default)
    assert "GATEWAY_FEISHU_API_BASE_URL" not in make(tmp_path).service_vars("gateway")


def test_every_service_has_an_env(tmp_path: Path) -> None:
    cfg = make(tmp_path, "test", ADMIN_API_KEY="k")
    for svc in SERVICES:
        assert cfg.service_env(svc)["TOLLGATE_PROFILE"] == "test"
    with pytest.raises(KeyError):
        cfg.service_env("postgres")


def test_every_process_gets_its_own_metrics_port_apart_from_its_http_port(tmp_path: Path) -> None:
    for profile in ("dev", "test", "scratch"):
        cfg = make(tmp_path, profile, TOLLGATE_PORT_OFFSET="1500", ADMIN_API_KEY="k")
        assert len(set(cfg.ports.values())) == len(cfg.ports), (profile, cfg.ports)  # no port shared
        env = {svc: cfg.service_vars(svc) for svc in METRICS_PORT_NAME}
        assert env["gateway"]["GATEWAY_METRICS_PORT"] == str(cfg.port("gateway_metrics"))
        assert env["billing"]["BILLING_METRICS_PORT"] == str(cfg.port("billing_metrics"))
        worker = env["billing_worker"]
        assert worker["BILLING_WORKER_METRICS_PORT"] == str(cfg.port("billing_worker_metrics"))
        assert "BILLING_METRICS_PORT" not in worker  # the API's port is not the worker's
        assert env["training_worker"]["TRAINING_WORKER_METRICS_PORT"] == str(
            cfg.port("training_worker_metrics")
        )
        assert cfg.metrics_url("analytics") == f"http://127.0.0.1:{cfg.port('analytics_metrics')}/metrics"
    assert "upstream_sim" not in METRICS_PORT_NAME
    with pytest.raises(KeyError):
        make(tmp_path).metrics_url("upstream_sim")


def test_scratch_stacks_moved_by_multiples_of_500_share_no_port_with_the_test_stack(tmp_path: Path) -> None:
    taken = set(make(tmp_path, "test").ports.values())
    for offset in range(500, 3001, 500):
        moved = set(make(tmp_path, "scratch", TOLLGATE_PORT_OFFSET=str(offset)).ports.values())
        assert not moved & taken, offset
