"""Builds a kustomization with the real tool: `kustomize build`, or `kubectl kustomize`.

Provisioning (`.ci/run`, `make tools`) installs kustomize from the Go module proxy; a machine with
neither tool fails these tests loudly rather than passing them unchecked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]


def kustomize_command() -> list[str]:
    """The command that renders a kustomization, preferring a standalone kustomize."""
    candidates = [os.environ.get("KUSTOMIZE", ""), "kustomize", str(Path.home() / "go" / "bin" / "kustomize")]
    for candidate in candidates:
        found = shutil.which(candidate) if candidate else None
        if found:
            return [found, "build"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    raise RuntimeError("neither kustomize nor kubectl is installed: run `make tools` (or .ci/run)")


def build(path: Path) -> list[Manifest]:
    out = subprocess.run([*kustomize_command(), str(path)], check=True, capture_output=True, text=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]
