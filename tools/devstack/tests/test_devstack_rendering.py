"""What the stack hands to Kafka, PostgreSQL, Redis and the llama server."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tollgate.devstack.config import StackConfig
from tollgate.devstack.kafka_broker import Kafka, new_cluster_id, render_server_properties
from tollgate.devstack.local_model import LlamaServer, registration_body
from tollgate.devstack.postgres import Postgres, pg_bin_dir
from tollgate.devstack.redis_server import Redis

REPO = StackConfig.from_env(environ={}).root


def cfg_for(tmp_path: Path, profile: str) -> StackConfig:
    # the real templates under deploy/local, state under tmp_path
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "deploy").symlink_to(REPO / "deploy")
    return StackConfig.from_env(profile=profile, environ={"ADMIN_API_KEY": "k"}, root=tmp_path)


def parse(text: str) -> dict[str, str]:
    props = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key] = value
    return props


def test_server_properties_from_the_shipped_template(tmp_path: Path) -> None:
    kafka = Kafka(cfg_for(tmp_path, "test"))
    props = parse(kafka.render())
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29193"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29192,CONTROLLER://127.0.0.1:29193"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29192"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / ".local" / "test" / "kafka" / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["log.cleaner.dedupe.buffer.size"] == "16777216"
    assert props["auto.create.topics.enable"] == "false"
    assert "$" not in "".join(props.values())


def test_render_substitutes_every_placeholder() -> None:
    out = render_server_properties(
        "a=${broker_port}\nb=${controller_port}\nc=${log_dirs}\n",
        broker_port=1,
        controller_port=2,
        log_dirs=Path("/d"),
    )
    assert out == "a=1\nb=2\nc=/d\n"


def test_cluster_ids_have_kafkas_format() -> None:
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_postgres_tuning_depends_on_profile(tmp_path: Path) -> None:
    test_opts = Postgres(cfg_for(tmp_path / "a", "test"))._server_options()
    dev_opts = Postgres(cfg_for(tmp_path / "b", "dev"))._server_options()
    assert "-p 25532" in test_opts and "fsync=off" in test_opts and "synchronous_commit=off" in test_opts
    assert "-p 55432" in dev_opts and "fsync=off" not in dev_opts
    for opts in (test_opts, dev_opts):
        assert "listen_addresses=127.0.0.1" in opts and "max_connections=300" in opts
    crash_safe = StackConfig.from_env(
        profile="faults",
        environ={"ADMIN_API_KEY": "k", "TOLLGATE_CRASH_SAFE_COMMITS": "1"},
        root=tmp_path / "c",
    )
    crash_opts = Postgres(crash_safe)._server_options()
    assert "fsync=off" in crash_opts and "synchronous_commit" not in crash_opts


def test_redis_is_append_only_on_loopback_and_daemonized(tmp_path: Path) -> None:
    cmd = Redis(cfg_for(tmp_path, "test")).command()
    pairs = dict(zip(cmd[1::2], cmd[2::2], strict=False))
    assert pairs["--port"] == "26479"
    assert pairs["--bind"] == "127.0.0.1"
    assert pairs["--appendonly"] == "yes"
    assert pairs["--daemonize"] == "yes"
    assert pairs["--dir"] == str(tmp_path / ".local" / "test" / "redis")


def test_llama_server_command(tmp_path: Path) -> None:
    cmd = LlamaServer(cfg_for(tmp_path, "test")).command(Path("/m/g.gguf"))
    joined = " ".join(cmd)
    assert "-m tollgate.devstack.llama_adapters" in joined
    assert f"--adapters_dir {tmp_path / '.local' / 'test' / 'training' / 'adapters'}" in joined
    assert "--model /m/g.gguf" in joined
    assert "--chat_format gemma" in joined
    assert "--port 18091" in joined and "--host 127.0.0.1" in joined
    assert "--n_ctx 2048" in joined


def test_model_registration_points_the_gateway_at_llama() -> None:
    body = registration_body(18091)
    assert body["name"] == "gemma-3-270m"
    assert body["provider"] == "openai-compatible"
    expected = {"base_url": "http://127.0.0.1:18091/v1", "model": "gemma-3-270m"}
    assert json.loads(str(body["config"])) == expected
    assert (body["price_in"], body["price_out"]) == (0.1, 0.2)


def test_postgres_binaries_prefer_15_then_the_newest(tmp_path: Path) -> None:
    for major in ("13", "17"):
        (tmp_path / major / "bin").mkdir(parents=True)
        (tmp_path / major / "bin" / "initdb").touch()
    assert pg_bin_dir(tmp_path) == tmp_path / "17" / "bin"
    (tmp_path / "15" / "bin").mkdir(parents=True)
    (tmp_path / "15" / "bin" / "initdb").touch()
    assert pg_bin_dir(tmp_path) == tmp_path / "15" / "bin"
