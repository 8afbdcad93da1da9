"""The tollgate-stack CLI and the Stack's name handling (no process is started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollgate.devstack.cli import main
from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack


def test_admin_key_command_prints_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADMIN_API_KEY", "sk-admin-from-env")
    assert main(["--profile", "test", "admin-key"]) == 0
    assert capsys.readouterr().out.strip() == "sk-admin-from-env"


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["explode"])
    assert exc.value.code == 2


def test_stack_names(tmp_path: Path) -> None:
    stack = Stack(StackConfig.from_env(profile="test", environ={"ADMIN_API_KEY": "k"}, root=tmp_path))
    logs = tmp_path / ".local" / "test" / "logs"
    assert stack.log_path("billing") == logs / "billing.log"
    assert stack.log_path("kafka") == logs / "kafka.log"
    assert stack.log_path("llama") == logs / "llama.log"
    # nothing was started under this root
    assert not stack.is_running("billing")
    assert not stack.is_running("redis")
    assert [s.running for s in stack.status()] == [False] * 14  # with feishu_sim and embeddings
    with pytest.raises(KeyError):
        stack.stop_infra("billing")
    with pytest.raises(KeyError):
        stack.start_service("kafka")
    with pytest.raises(KeyError):
        stack.is_running("mysql")


def test_down_of_a_stopped_stack_is_a_no_op(tmp_path: Path) -> None:
    stack = Stack(StackConfig.from_env(profile="test", environ={"ADMIN_API_KEY": "k"}, root=tmp_path))
    stack.down()
    stack.down()
    assert not any(s.running for s in stack.status())
