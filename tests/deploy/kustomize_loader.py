"""Builds a kustomization: `kubectl kustomize` when kubectl is installed, else a small Python loader.

The loader supports exactly the kustomize features deploy/k8s uses (resources, namespace, replicas and
JSON 6902 patches with a kind/name target); `test_loader_matches_kubectl` keeps the two in step.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
SUPPORTED_KEYS = {"apiVersion", "kind", "namespace", "resources", "replicas", "patches"}

Manifest = dict[str, Any]


def build(path: Path) -> list[Manifest]:
    kubectl = shutil.which("kubectl")
    if kubectl:
        return build_with_kubectl(kubectl, path)
    return build_with_python(path)


def build_with_kubectl(kubectl: str, path: Path) -> list[Manifest]:
    out = subprocess.run([kubectl, "kustomize", str(path)], check=True, capture_output=True, text=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def build_with_python(path: Path) -> list[Manifest]:
    kustomization = yaml.safe_load((path / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED_KEYS
    if unsupported:
        raise ValueError(f"{path}: kustomize features the loader lacks: {sorted(unsupported)}")
    docs: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        target = (path / entry).resolve()
        if target.is_dir():
            docs.extend(build_with_python(target))
        else:
            docs.extend(d for d in yaml.safe_load_all(target.read_text()) if d)
    namespace = kustomization.get("namespace")
    for doc in docs:
        if namespace and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = namespace
    for rep in kustomization.get("replicas", []):
        for doc in docs:
            if doc["metadata"]["name"] == rep["name"] and "replicas" in doc.get("spec", {}):
                doc["spec"]["replicas"] = rep["count"]
    for patch in kustomization.get("patches", []):
        ops = yaml.safe_load(patch["patch"])
        target = patch.get("target", {})
        for doc in docs:
            if all(_field(doc, k) == v for k, v in target.items()):
                _apply_json_patch(doc, ops)
    return docs


def _field(doc: Manifest, key: str) -> Any:
    return doc.get(key) if key == "kind" else doc["metadata"].get(key)


def _apply_json_patch(doc: Manifest, ops: list[dict[str, Any]]) -> None:
    for op in ops:
        if op["op"] not in ("add", "replace"):
            raise ValueError(f"unsupported patch op {op['op']}")
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            if last == "-":
                node.append(copy.deepcopy(op["value"]))
            elif op["op"] == "add":
                node.insert(int(last), copy.deepcopy(op["value"]))
            else:
                node[int(last)] = copy.deepcopy(op["value"])
        else:
            if op["op"] == "replace" and last not in node:
                raise KeyError(f"replace of missing {op['path']}")
            node[last] = copy.deepcopy(op["value"])
