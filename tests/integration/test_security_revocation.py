"""A revoked key is refused by the gateway while its principal is still cached (the cache lives 30 s;
only auth.keys.v1 dropping it can explain a refusal well before that): admin delete, user delete
(SloughGPT) and the credit chat API. How fast (the contract: under a second) is measured by `make bench`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tollgate.devstack.testing import Account, chat_status, sign_up
from tollgate.gateway.config import GatewaySettings

# a third of the principal cache's lifetime: a refusal before it can only come from invalidation
WITHIN_S = GatewaySettings().auth_cache_ttl_s / 3


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


def _refused_before_the_cache_expires(http: httpx.Client, key: str) -> None:
    """Polls the gateway with the revoked key; every answer before the 401 must be the cached 200."""
    revoked_at = time.monotonic()
    while time.monotonic() - revoked_at < WITHIN_S:
        status = chat_status(http, key)
        if status == 401:
            return
        assert status == 200, f"unexpected {status} while waiting for the revocation"
        time.sleep(0.02)
    raise AssertionError(f"the revoked key was still accepted after {WITHIN_S:.0f} s")


def _warm(http: httpx.Client, key: str) -> None:
    for _ in range(2):  # the second call is answered from the gateway's principal cache
        assert chat_status(http, key) == 200
        assert http.get("/v1/models", headers=_bearer(key)).status_code == 200


def test_admin_delete_is_effective_while_the_principal_is_cached(
    http: httpx.Client, admin: httpx.Client, new_account: Callable[..., Account]
) -> None:
    account = new_account(credits=1)
    _warm(http, account.key)
    resp = admin.post("/admin/api-key/delete", json={"id": account.key_id})
    assert resp.status_code == 200, resp.text
    _refused_before_the_cache_expires(http, account.key)
    assert http.get("/v1/models", headers=_bearer(account.key)).status_code == 401


@pytest.mark.parametrize("route", ["/auth/api-keys", "/api/keys"])
def test_user_delete_is_effective_while_the_principal_is_cached(
    http: httpx.Client, admin: httpx.Client, route: str
) -> None:
    user = sign_up(http)
    if route == "/auth/api-keys":
        created = http.post(route, json={"name": "doomed"}, headers=_bearer(user.access_token))
        assert created.status_code == 201, created.text
        key = created.json()["api_key"]
    else:
        created = http.post(route, json={"name": "doomed"}, headers=_bearer(user.access_token))
        assert created.status_code == 200, created.text
        key = created.json()["key"]
    funded = admin.post("/admin/api-key/recharge", json={"api_key": key, "balance": 1})
    assert funded.status_code == 200, funded.text
    _warm(http, key)
    resp = http.delete(f"{route}/{created.json()['id']}", headers=_bearer(user.access_token))
    assert resp.status_code == 200 and resp.json()["revoked"] is True, resp.text
    _refused_before_the_cache_expires(http, key)
    # and it stays refused, on every credential-taking route
    assert http.get("/v1/models", headers=_bearer(key)).status_code == 401
    assert http.get("/v1/credits", headers=_bearer(key)).status_code == 401
    assert http.get("/auth/me", headers=_bearer(key)).status_code == 401
