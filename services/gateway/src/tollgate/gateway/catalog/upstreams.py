"""A model's upstreams (its deployments): the top-level one of `config` and `config.deployments`.

One model name may be served by several deployments (providers, keys, regions, as in LiteLLM's
router). The model's own top-level upstream is its first deployment, labelled "default", with
`config.weight` / `config.priority`; `config.deployments` adds the others, each an object with the
upstream fields a model's config has (`base_url`, `api_key`, `model`, and for `bedrock-converse` its
`region`, `endpoint` and credentials), a `provider` of its own (default: the model's), a `name` (its
label, unique within the model; default "1", "2", …), a `weight` (int ≥ 1, default 1) and a
`priority` (int ≥ 0, default 0; lower goes first). routing/chain.py orders them per request.

Stored in the model's JSONB extra config under "deployments", each key (or Bedrock's credentials with
their region) as a Fernet token in "api_key_encrypted", like the model's own key; never returned by
the admin routes. Pure: no database, no secrets box (catalog/service.py encrypts, snapshot.py reads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.providers.registry import PROVIDERS

BEDROCK = "bedrock-converse"
BEDROCK_DEFAULT_REGION = "us-east-1"


def bedrock_endpoint(region: str) -> str:
    return f"https://bedrock-runtime.{region}.amazonaws.com"


DEFAULT_LABEL = "default"  # the model's top-level upstream
MAX_DEPLOYMENTS = 16  # besides the top-level one: each may cost an attempt inside one deadline
MAX_WEIGHT = 1_000_000
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_API_KEY_FIELDS = ("api_key", "apiKey")
_MODEL_FIELDS = ("model", "modelId", "upstream_model")
_BEDROCK_SECRETS = ("accessKeyId", "secretAccessKey", "sessionToken")
_DEPLOYMENT_FIELDS = frozenset(
    {"name", "provider", "weight", "priority", "base_url", "baseUrl", "region", "endpoint"}
    | set(_API_KEY_FIELDS)
    | set(_MODEL_FIELDS)
    | set(_BEDROCK_SECRETS)
)


@dataclass(frozen=True)
class Upstream:
    """Where one deployment's calls go (the api key in clear, until catalog/service.py encrypts it)."""

    base_url: str
    upstream_model: str
    api_key: str | None
    api_key_given: bool  # an update without api_key keeps the stored secret


@dataclass(frozen=True)
class DeploymentConfig:
    label: str
    provider: str
    upstream: Upstream
    weight: int
    priority: int
    # bedrock-converse: the region sent with it (kept in clear; a new one re-signs kept credentials)
    region: str | None = None


def parse_upstream(data: dict[str, Any], provider: str, default_model: str, where: str) -> Upstream:
    """Pops the upstream fields out of `data` (a model's config or one deployment), checking them;
    `where` names the object in errors ("config", "config.deployments[0]")."""
    if provider == BEDROCK:
        _bedrock_config(data, where)
    base_url = data.pop("base_url", None) or data.pop("baseUrl", None)
    if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
        raise InvalidRequest(f"{where}.base_url must be an http(s) URL.", param=f"{where}.base_url")
    upstream_model: Any = default_model
    for key in _MODEL_FIELDS:
        if key in data:
            upstream_model = data.pop(key)
    if not isinstance(upstream_model, str) or not upstream_model:
        raise InvalidRequest(f"{where}.model must be a non-empty string.", param=f"{where}.model")
    api_key: Any = None
    api_key_given = False
    for key in _API_KEY_FIELDS:
        if key in data:
            api_key, api_key_given = data.pop(key), True
    if api_key is not None and not isinstance(api_key, str):
        raise InvalidRequest(f"{where}.api_key must be a string.", param=f"{where}.api_key")
    return Upstream(base_url.rstrip("/"), upstream_model, api_key or None, api_key_given)


def _bedrock_config(data: dict[str, Any], where: str) -> None:
    """Bedrock's config (`modelId`, `region`, credentials, an optional `endpoint`) in the catalog's
    terms: base_url is the endpoint (or the region's bedrock-runtime host), and the credentials
    with the region travel as one encrypted secret (api_key, a JSON object) never returned."""
    region = data.get("region") or BEDROCK_DEFAULT_REGION
    if not isinstance(region, str) or not region.replace("-", "").isalnum():
        raise InvalidRequest(f"{where}.region must be an AWS region name.", param=f"{where}.region")
    endpoint = data.pop("endpoint", None)
    if endpoint is not None and not isinstance(endpoint, str):
        raise InvalidRequest(f"{where}.endpoint must be an http(s) URL.", param=f"{where}.endpoint")
    data.setdefault("base_url", endpoint or bedrock_endpoint(region))
    secrets = {key: data.pop(key) for key in _BEDROCK_SECRETS if key in data}
    for key, value in secrets.items():
        if not isinstance(value, str):
            raise InvalidRequest(f"{where}.{key} must be a string.", param=f"{where}.{key}")
    if secrets:
        data["api_key"] = orjson.dumps({"region": region, **secrets}).decode()


def check_weight_and_priority(data: dict[str, Any], where: str) -> tuple[int, int]:
    """`weight` (int ≥ 1, default 1) and `priority` (int ≥ 0, default 0), left in `data`."""
    weight, priority = data.get("weight", 1), data.get("priority", 0)
    if not _is_int(weight) or not 1 <= weight <= MAX_WEIGHT:
        raise InvalidRequest(
            f"{where}.weight must be an integer from 1 to {MAX_WEIGHT}.", param=f"{where}.weight"
        )
    if not _is_int(priority) or priority < 0:
        raise InvalidRequest(f"{where}.priority must be an integer ≥ 0.", param=f"{where}.priority")
    return weight, priority


def parse_deployments(value: Any, model_provider: str, default_model: str) -> list[DeploymentConfig]:
    """`config.deployments` checked: a list of objects (see the module's docstring)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest("config.deployments must be an array of objects.", param="config.deployments")
    if len(value) > MAX_DEPLOYMENTS:
        raise InvalidRequest(f"At most {MAX_DEPLOYMENTS} deployments per model.", param="config.deployments")
    labels = {DEFAULT_LABEL}
    out = []
    for i, raw in enumerate(value):
        where = f"config.deployments[{i}]"
        if not isinstance(raw, dict):
            raise InvalidRequest(f"{where} must be an object.", param=where)
        data = dict(raw)
        unknown = sorted(set(data) - _DEPLOYMENT_FIELDS)
        if unknown:
            raise InvalidRequest(
                f"{where}.{unknown[0]} is not a deployment field.", param=f"{where}.{unknown[0]}"
            )
        label = data.pop("name", str(i + 1))
        if not isinstance(label, str) or not _LABEL.fullmatch(label):
            raise InvalidRequest(
                f"{where}.name must be 1-64 letters, digits, '.', '_', ':' or '-'.", param=f"{where}.name"
            )
        if label in labels:
            reserved = " (the model's own upstream)" if label == DEFAULT_LABEL else ""
            raise InvalidRequest(
                f"{where}.name {label!r} is taken{reserved}; names are unique within a model.",
                param=f"{where}.name",
            )
        labels.add(label)
        provider = data.pop("provider", model_provider)
        if not isinstance(provider, str) or provider.strip().lower() not in PROVIDERS:
            supported = ", ".join(sorted(PROVIDERS))
            raise InvalidRequest(
                f"{where}.provider {provider!r} is unknown; supported: {supported}.",
                param=f"{where}.provider",
            )
        provider = provider.strip().lower()
        weight, priority = check_weight_and_priority(data, where)
        upstream = parse_upstream(data, provider, default_model, where)
        region = data.get("region") if provider == BEDROCK else None
        out.append(DeploymentConfig(label, provider, upstream, weight, priority, region))
    return out


def stored_deployments(extra_config: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The model's extra deployments as saved by catalog/service.py (secrets still encrypted)."""
    value = (extra_config or {}).get("deployments")
    if not isinstance(value, list):
        return []
    return [d for d in value if isinstance(d, dict) and isinstance(d.get("name"), str)]


def stored_weight_and_priority(extra: dict[str, Any]) -> tuple[int, int]:
    """A stored deployment's (or the top-level's, from the model's extra config) weight and priority."""
    weight, priority = extra.get("weight", 1), extra.get("priority", 0)
    return (weight if _is_int(weight) and weight >= 1 else 1, priority if _is_int(priority) else 0)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
