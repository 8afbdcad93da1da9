"""The one provisioning step (scripts/provision-system.sh, run by `make setup` and .ci/run) on a
machine that has nothing: with no tool on PATH it asks apt for every package the stack and the
tests need, and apt (simulating, against the real package index) can install each of them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "provision-system.sh"
# what a bare Debian machine lacks and the platform needs, one package per missing tool
EVERY_PACKAGE = [
    "postgresql",
    "redis-server",
    "make",
    "openjdk-17-jre-headless",
    "maven",
    "build-essential",
    "cmake",
    "golang-go",
    "prometheus",
    "chromium",
]
# the script itself runs on bash and a few core utilities: all a bare machine is sure to have
BASE_TOOLS = ["bash", "ls", "id", "apt-get", "env"]


def bare_path(tmp_path: Path) -> str:
    """A PATH holding only the base tools (links to the machine's own)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in BASE_TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is missing on this machine"
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def provision(tmp_path: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": path,
        "HOME": str(tmp_path),
        "PROVISION_SIMULATE": "1",
        "PROVISION_PG_INITDB": str(tmp_path / "no-postgresql" / "*" / "initdb"),
    }
    bash = shutil.which("bash")
    assert bash
    return subprocess.run(
        [bash, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_on_a_bare_machine_every_package_is_asked_for_and_apt_can_install_it(tmp_path: Path) -> None:
    done = provision(tmp_path, bare_path(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]
    assert first == "installing: " + " ".join(EVERY_PACKAGE), first
    # apt's simulation resolved each one (an unknown package name exits non-zero above)
    for package in EVERY_PACKAGE:
        assert f"Inst {package} " in done.stdout or f"{package} is already the newest" in done.stdout, package


def test_on_this_provisioned_machine_nothing_is_missing(tmp_path: Path) -> None:
    """The same script with the machine's PATH and PostgreSQL finds everything in place (make test
    runs after .ci/run provisioned the machine), so it asks for nothing."""
    env_path = os.environ["PATH"]
    done = subprocess.run(
        [shutil.which("bash") or "bash", str(SCRIPT)],
        env={"PATH": env_path, "HOME": str(tmp_path), "PROVISION_SIMULATE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "system packages: all present", done.stdout
