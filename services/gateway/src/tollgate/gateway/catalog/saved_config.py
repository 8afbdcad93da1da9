"""A model's config as an editor reads it back, and the rules that keep secrets out of it.

`/admin/model/save` replaces a model's whole config (the Bedrock-style gateway's update sends the
whole model), so an editor must start from every key the model was saved with: `saved_config` gives
them, in the form save takes back — the upstream (`base_url`, `model`; for `bedrock-converse` its
`modelId`, `region` and a custom `endpoint`), `max_tokens`, the deployments without their secrets, and
every other key of the extra config untouched (fallbacks, limits, weight, priority, whatever
provider-specific key was saved). Saved back unchanged it changes nothing: a secret left out keeps
the stored one (api_key, Bedrock's credentials, a deployment's key by its label).

Secrets are never in it: the model's key and Bedrock's credentials are popped by parse_config and
stored encrypted, deployments' keys likewise; any other key whose name says it is a credential is
refused on save (`refuse_plain_secrets`: it would be stored in clear) and left out here (rows saved
before the rule). Pure: no database, no secrets box."""

from __future__ import annotations

import re
from typing import Any

import orjson

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.catalog.models import Model
from tollgate.gateway.catalog.upstreams import (
    BEDROCK,
    BEDROCK_DEFAULT_REGION,
    bedrock_endpoint,
    stored_deployments,
    stored_weight_and_priority,
)

# a key named like a credential: api_key, apiKey, client_secret, password, accessKeyId, authToken, ...
_SECRET_NAME = re.compile(
    r"secret|passw|credential|private_?key|access_?key|api_?key|auth_?token|session_?token|bearer"
)


def _looks_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.lower().replace("-", "_")))


def _secret_path(value: Any, where: str) -> str | None:
    """The first key under `value` (nested objects and arrays too) named like a credential."""
    if isinstance(value, dict):
        for key, inner in value.items():
            path = f"{where}.{key}"
            if _looks_secret(str(key)):
                return path
            found = _secret_path(inner, path)
            if found:
                return found
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found = _secret_path(inner, f"{where}[{i}]")
            if found:
                return found
    return None


def refuse_plain_secrets(extra: dict[str, Any]) -> None:
    """The extra config (what parse_config left: kept in clear) must hold no credential."""
    for key, value in extra.items():
        path = _secret_path({key: value}, "config")
        if path:
            raise InvalidRequest(
                f"{path} looks like a credential, which the extra config would keep in clear: "
                "send the model's key as config.api_key (Bedrock: accessKeyId, secretAccessKey, "
                "sessionToken), which are stored encrypted and never returned.",
                param=path,
            )


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if not _looks_secret(str(k))}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def _bedrock_place(base_url: str, region: str) -> dict[str, str]:
    """A Bedrock upstream as save takes it: its region, and its endpoint only when not the region's."""
    return (
        {"region": region}
        if base_url == bedrock_endpoint(region)
        else {"region": region, "endpoint": base_url}
    )


def saved_config(model: Model) -> dict[str, Any]:
    """Every non-secret key of the model's config, as /admin/model/save takes it back."""
    extra = dict(model.extra_config or {})
    extra.pop("deployments", None)
    config: dict[str, Any]
    if model.provider == BEDROCK:
        region = extra.get("region") if isinstance(extra.get("region"), str) else BEDROCK_DEFAULT_REGION
        config = {"modelId": model.upstream_model, **_bedrock_place(model.base_url, region)}
    else:
        config = {"base_url": model.base_url, "model": model.upstream_model}
    config["max_tokens"] = model.max_tokens_default
    config.update(_without_secrets({k: v for k, v in extra.items() if k not in config}))
    deployments = []
    for stored in stored_deployments(model.extra_config):
        weight, priority = stored_weight_and_priority(stored)
        deployment: dict[str, Any] = {
            "name": stored["name"],
            "provider": str(stored.get("provider", "")),
            "base_url": str(stored.get("base_url", "")),
            "model": str(stored.get("model", "")),
            "weight": weight,
            "priority": priority,
        }
        region = stored.get("region")
        if deployment["provider"] == BEDROCK and isinstance(region, str):
            deployment.update(_bedrock_place(deployment.pop("base_url"), region))  # as the model's own
        deployments.append(deployment)
    if deployments:
        config["deployments"] = deployments
    return config


def rekeyed_bedrock_secret(secret: str, region: str) -> str | None:
    """The stored Bedrock credential bundle signed for `region` instead (None: already so, or not
    a bundle): a region changed without sending the credentials again must sign for the new one."""
    try:
        bundle = orjson.loads(secret)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(bundle, dict) or bundle.get("region") == region:
        return None
    return orjson.dumps({**bundle, "region": region}).decode()
