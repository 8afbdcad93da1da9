"""A Feishu (Lark) open platform for tests: the two APIs a Tollgate bot calls, and the push side
that delivers events to a bot's request URL the way Feishu does.

Open APIs (as open.feishu.cn answers them):
- `POST /open-apis/auth/v3/tenant_access_token/internal` `{"app_id", "app_secret"}` →
  `{"code": 0, "msg": "ok", "tenant_access_token", "expire"}`; an unknown app or a wrong secret →
  HTTP 400 with a non-zero code.
- `POST /open-apis/im/v1/messages/{message_id}/reply` with `Authorization: Bearer <tenant token>`,
  `{"msg_type": "text", "content": "{\\"text\\": ...}", "uuid"?}` → `{"code": 0, "data": {...}}`.
  A `uuid` seen before for the same app answers the first reply again without sending another
  (Feishu's request de-duplication).

Test controls (`/_sim/*`): register an app, read the replies sent and the token requests, deliver
an `im.message.receive_v1` event (plain or encrypted, signed, badly signed, or unsigned) or a URL
verification challenge to a bot's URL — as often as a test likes, so it can make Feishu deliver the
same event twice.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollgate.feishu_sim.crypto import encrypt, signature


@dataclass
class SimState:
    token_ttl_s: int
    apps: dict[str, str] = field(default_factory=dict)  # app_id -> app_secret
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (app_id, expiry)
    token_requests: int = 0
    replies: list[dict[str, Any]] = field(default_factory=list)
    by_uuid: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def _state(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


# ---- open APIs ---------------------------------------------------------------------------------
async def tenant_access_token(request: Request) -> Response:
    state = _state(request)
    body = await _json(request)
    state.token_requests += 1
    app_id, app_secret = body.get("app_id"), body.get("app_secret")
    if not isinstance(app_id, str) or app_id not in state.apps:
        return json_response({"code": 10003, "msg": "invalid param: app_id"}, 400)
    if not secrets.compare_digest(str(app_secret), state.apps[app_id]):
        return json_response({"code": 10014, "msg": "app secret invalid"}, 400)
    token = "t-" + secrets.token_hex(16)
    state.tokens[token] = (app_id, time.time() + state.token_ttl_s)
    return json_response({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": state.token_ttl_s})


async def reply(request: Request) -> Response:
    state = _state(request)
    auth = request.headers.get("authorization", "")
    token = auth.removeprefix("Bearer ").strip()
    found = state.tokens.get(token)
    if found is None or found[1] < time.time():
        return json_response({"code": 99991663, "msg": "Invalid access token for authorization."}, 400)
    app_id = found[0]
    body = await _json(request)
    if body.get("msg_type") != "text" or not isinstance(body.get("content"), str):
        return json_response({"code": 230001, "msg": "invalid msg_type or content"}, 400)
    try:
        content = orjson.loads(body["content"])
    except orjson.JSONDecodeError:
        return json_response({"code": 230001, "msg": "content is not JSON"}, 400)
    if not isinstance(content, dict) or not isinstance(content.get("text"), str):
        return json_response({"code": 230001, "msg": "content has no text"}, 400)
    request_uuid = body.get("uuid")
    if isinstance(request_uuid, str) and len(request_uuid) > 50:
        return json_response({"code": 230001, "msg": "uuid longer than 50 characters"}, 400)
    if isinstance(request_uuid, str) and (app_id, request_uuid) in state.by_uuid:
        sent = state.by_uuid[(app_id, request_uuid)]
        return json_response({"code": 0, "msg": "success", "data": sent["data"]})
    parent = request.path_params["message_id"]
    data = {
        "message_id": "om_" + uuid.uuid4().hex,
        "root_id": parent,
        "parent_id": parent,
        "msg_type": "text",
        "create_time": str(int(time.time() * 1000)),
        "sender": {"id": app_id, "id_type": "app_id", "sender_type": "app"},
        "body": {"content": body["content"]},
    }
    record = {
        "app_id": app_id,
        "parent_id": parent,
        "text": content["text"],
        "uuid": request_uuid,
        "data": data,
    }
    state.replies.append(record)
    if isinstance(request_uuid, str):
        state.by_uuid[(app_id, request_uuid)] = record
    return json_response({"code": 0, "msg": "success", "data": data})


# ---- test controls -----------------------------------------------------------------------------
async def register_app(request: Request) -> Response:
    body = await _json(request)
    _state(request).apps[str(body["app_id"])] = str(body["app_secret"])
    return json_response({"ok": True})


async def list_replies(request: Request) -> Response:
    state = _state(request)
    app_id = request.query_params.get("app_id")
    parent = request.query_params.get("parent_id")
    rows = [
        {k: v for k, v in r.items() if k != "data"} | {"message_id": r["data"]["message_id"]}
        for r in state.replies
        if (app_id is None or r["app_id"] == app_id) and (parent is None or r["parent_id"] == parent)
    ]
    return json_response({"replies": rows, "token_requests": state.token_requests})


def message_event(body: dict[str, Any]) -> dict[str, Any]:
    """An `im.message.receive_v1` event (event schema 2.0) as Feishu pushes it."""
    now_ms = str(int(time.time() * 1000))
    text = str(body.get("text", ""))
    mentions = body.get("mentions") or []
    return {
        "schema": "2.0",
        "header": {
            "event_id": body.get("event_id") or uuid.uuid4().hex,
            "event_type": "im.message.receive_v1",
            "create_time": now_ms,
            "token": body.get("verification_token") or "",
            "app_id": body["app_id"],
            "tenant_key": "sim-tenant",
        },
        "event": {
            "sender": {
                "sender_id": {"open_id": "ou_sim_user", "union_id": "on_sim_user", "user_id": "sim-user"},
                "sender_type": body.get("sender_type", "user"),
                "tenant_key": "sim-tenant",
            },
            "message": {
                "message_id": body.get("message_id") or "om_" + uuid.uuid4().hex,
                "create_time": now_ms,
                "chat_id": "oc_sim_chat",
                "chat_type": body.get("chat_type", "p2p"),
                "message_type": body.get("message_type", "text"),
                "content": orjson.dumps({"text": text}).decode(),
                "mentions": mentions,
            },
        },
    }


async def _push(request: Request, url: str, payload: dict[str, Any], body: dict[str, Any]) -> Response:
    """Encrypt (with an encrypt_key), sign (unless `unsigned`; `bad_signature` signs wrongly) and POST
    the payload to `url` as Feishu does; answers what the bot's endpoint answered."""
    encrypt_key = body.get("encrypt_key") or ""
    plain = orjson.dumps(payload).decode()
    raw = orjson.dumps({"encrypt": encrypt(plain, encrypt_key)}) if encrypt_key else plain.encode()
    headers = {"content-type": "application/json"}
    if encrypt_key and not body.get("unsigned"):
        timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
        sign_key = "not-the-encrypt-key" if body.get("bad_signature") else encrypt_key
        headers.update(
            {
                "x-lark-request-timestamp": timestamp,
                "x-lark-request-nonce": nonce,
                "x-lark-signature": signature(timestamp, nonce, sign_key, raw),
            }
        )
    client: httpx.AsyncClient = request.app.state.client
    answer = await client.post(url, content=raw, headers=headers)
    try:
        answered: Any = answer.json()
    except ValueError:
        answered = answer.text
    return json_response({"status": answer.status_code, "body": answered, "payload": payload})


async def deliver_message(request: Request) -> Response:
    body = await _json(request)
    return await _push(request, str(body["url"]), message_event(body), body)


async def deliver_event(request: Request) -> Response:
    """Any payload (e.g. the same event again, or another event type) pushed as Feishu would."""
    body = await _json(request)
    return await _push(request, str(body["url"]), dict(body["event"]), body)


async def verify_url(request: Request) -> Response:
    body = await _json(request)
    challenge = str(uuid.uuid4())
    payload = {
        "challenge": challenge,
        "token": body.get("verification_token") or "",
        "type": "url_verification",
    }
    return await _push(request, str(body["url"]), payload, body)


async def reset(request: Request) -> Response:
    state = _state(request)
    state.replies.clear()
    state.by_uuid.clear()
    state.token_requests = 0
    return json_response({"ok": True})


async def healthz(_: Request) -> Response:
    return json_response({"status": "ok"})


def create_app(token_ttl_s: int = 7200, client: httpx.AsyncClient | None = None) -> Starlette:
    app = Starlette(
        routes=[
            Route("/open-apis/auth/v3/tenant_access_token/internal", tenant_access_token, methods=["POST"]),
            Route("/open-apis/im/v1/messages/{message_id}/reply", reply, methods=["POST"]),
            Route("/_sim/apps", register_app, methods=["POST"]),
            Route("/_sim/replies", list_replies, methods=["GET"]),
            Route("/_sim/deliver/message", deliver_message, methods=["POST"]),
            Route("/_sim/deliver/event", deliver_event, methods=["POST"]),
            Route("/_sim/deliver/url_verification", verify_url, methods=["POST"]),
            Route("/_sim/reset", reset, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    app.state.sim = SimState(token_ttl_s=token_ttl_s)
    app.state.client = client or httpx.AsyncClient(timeout=10, trust_env=False)
    return app
