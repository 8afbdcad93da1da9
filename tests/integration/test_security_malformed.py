"""Malformed input on every public POST route: a 4xx (never a 500, never FastAPI's 422) in the
route's own envelope, and nothing written. Every string sent carries a unique marker, so "nothing
written" is checked by scanning every text column of auth, billing and gateway for it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, service_db, sign_up

# route -> (credential, envelope)
ROUTES: dict[str, tuple[str, str]] = {
    "/v1/chat/completions": ("key", "openai"),
    "/admin/api-key/apply": ("admin", "openai"),
    "/admin/api-key/update": ("admin", "openai"),
    "/admin/api-key/delete": ("admin", "openai"),
    "/admin/api-key/recharge": ("admin", "openai"),
    "/admin/group/save": ("admin", "openai"),
    "/admin/group/delete": ("admin", "openai"),
    "/admin/group/models/authorize": ("admin", "openai"),
    "/admin/group/models/deauthorize": ("admin", "openai"),
    "/admin/api-key/models/authorize": ("admin", "openai"),
    "/admin/api-key/models/deauthorize": ("admin", "openai"),
    "/admin/model/save": ("admin", "openai"),
    "/admin/model/delete": ("admin", "openai"),
    "/auth/register": ("none", "sloughgpt"),
    "/auth/login": ("none", "sloughgpt"),
    "/auth/token": ("none", "sloughgpt"),
    "/auth/refresh": ("none", "sloughgpt"),
    "/auth/api-keys": ("token", "sloughgpt"),
    "/api/keys": ("token", "credit_chat"),
    "/auth/orgs": ("token", "sloughgpt"),
    "/auth/invitations/accept": ("token", "sloughgpt"),
    # an organisation the caller is not in: the body is refused (400) before membership (403)
    "/auth/orgs/org_not_mine/members": ("token", "sloughgpt"),
    "/auth/orgs/org_not_mine/invitations": ("token", "sloughgpt"),
}
FIELDS = ["name", "email", "password", "username", "refresh_token", "api_key"]
FIELDS += ["model", "provider", "config", "description", "q", "token"]
TYPED = {"id": 1, "key_id": 1, "group_id": 1, "balance": 1, "price_in": 1, "price_out": 1, "max_tokens": 1}
SQL = "x'); DROP TABLE api_keys; -- \" OR 1=1; SELECT pg_sleep(5); --"
UNICODE = "\U0001f525 Zalgo z\u0351\u0352 \u202e RTL \ufeff \ud7ff \u4e2d\u6587 \U0001f600"


def _payloads(marker: str) -> dict[str, bytes]:
    def every(value: Callable[[str], Any]) -> dict[str, Any]:
        return {f: value(f) for f in FIELDS}

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    # Each one is malformed for every route: typed fields get strings, lists are strings, etc.
    return {
        "missing_fields": b"{}",
        "not_json": b"{" + marker.encode() + b"'",
        "not_an_object": dumps([marker, 1]),
        "wrong_types": dumps(
            {
                **every(lambda f: [f, marker]),
                **{k: f"{marker}-nan" for k in TYPED},
                "messages": marker,
                "models": marker,
                "permissions": marker,
            }
        ),
        "two_megabytes": dumps({**every(lambda f: f"{marker}{'a' * (2 * 1024 * 1024 // len(FIELDS))}")}),
        "sql_metacharacters": dumps(
            {
                **every(lambda f: f"{marker}{SQL}"),
                **{k: f"1; {SQL}" for k in TYPED},
                "messages": [{"role": SQL, "content": marker}],
                "models": [{"sql": SQL}],
                "permissions": [SQL],
                "role": SQL,
            }
        ),
        "unicode_and_emoji": dumps(
            {
                **every(lambda f: f"{marker}{UNICODE}"),
                **{k: f"\U0001f4b0{UNICODE}" for k in TYPED},
                "messages": [{"role": UNICODE, "content": marker}],
                "models": UNICODE,
                "permissions": [UNICODE],
                "role": UNICODE,
            }
        ),
        "null_bytes": dumps(
            {
                **every(lambda f: f"{marker}\u0000{f}\u0000"),
                **{k: "\u0000" for k in TYPED},
                "messages": [{"role": "\u0000", "content": f"{marker}\u0000"}],
                "models": ["\u0000"],
                "permissions": ["\u0000"],
            }
        ),
        "null_bytes_in_names_only": dumps({"name": f"{marker}\u0000x", "email": f"{marker}\u0000@x.io"}),
    }


KINDS = list(_payloads("m"))


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def credentials(
    http: httpx.Client, config: StackConfig, new_account: Callable[..., Account]
) -> dict[str, dict[str, str]]:
    return {
        "none": {},
        "admin": {"Authorization": f"Bearer {config.admin_api_key}"},
        "key": {"Authorization": f"Bearer {new_account(credits=1).key}"},
        "token": {"Authorization": f"Bearer {sign_up(http).access_token}"},
    }


def _check_envelope(resp: httpx.Response, envelope: str) -> None:
    body = resp.json()
    assert set(body) == {"error"}, resp.text
    error = body["error"]
    if envelope == "openai":
        assert {"message", "type", "code", "param"} <= set(error), resp.text
        assert isinstance(error["message"], str) and error["message"]
    elif envelope == "sloughgpt":
        assert set(error) == {"code", "message", "details", "request_id"}, resp.text
        assert error["request_id"] == resp.headers["x-request-id"]
    else:
        assert isinstance(error, str) and error, resp.text


def _written(config: StackConfig, marker: str) -> list[str]:
    found = []
    for svc in ("auth", "billing", "gateway"):
        with service_db(config, svc) as conn:
            columns = conn.execute(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c"
                " JOIN information_schema.tables t USING (table_schema, table_name)"
                " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
                " AND c.data_type IN ('text', 'character varying', 'json', 'jsonb')"
            ).fetchall()
            for table, column in columns:
                row = conn.execute(
                    f'SELECT count(*) FROM "{table}" WHERE position(%s in "{column}"::text) > 0',
                    (marker,),
                ).fetchone()
                if row and row[0]:
                    found.append(f"{svc}.{table}.{column}")
    return found


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", list(ROUTES))
def test_malformed_post_is_a_4xx_in_the_route_envelope_and_writes_nothing(
    http: httpx.Client,
    config: StackConfig,
    credentials: dict[str, dict[str, str]],
    route: str,
    kind: str,
) -> None:
    credential, envelope = ROUTES[route]
    marker = f"mk{uuid.uuid4().hex[:16]}"
    raw = _payloads(marker)[kind]
    resp = http.post(
        route, content=raw, headers={**credentials[credential], "Content-Type": "application/json"}
    )
    assert 400 <= resp.status_code < 500 and resp.status_code != 422, f"{resp.status_code}: {resp.text[:500]}"
    _check_envelope(resp, envelope)
    assert _written(config, marker) == []
