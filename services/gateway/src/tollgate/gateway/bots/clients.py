"""The bot's two outbound calls: Feishu's open API (tenant token, message reply) and the model,
through this gateway's own OpenAI endpoint with the bot's key (so the answer passes the normal
pipeline — principal, limits, hold, usage — and is billed to that key)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import orjson

# Feishu's codes for an invalid or expired tenant token: fetch a new one and try once more
_TOKEN_CODES = frozenset({99991661, 99991663, 99991664, 99991668})
TOKEN_MARGIN_S = 60  # a cached token is renewed this long before Feishu says it expires


class FeishuError(Exception):
    """Feishu refused or could not be reached (a reply may be tried again)."""


class FeishuClient:
    def __init__(
        self, http: httpx.AsyncClient, base_url: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        # (app id, digest of the secret) -> (token, renew at): a changed secret never uses an old token
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}

    @staticmethod
    def _cache_key(app_id: str, app_secret: str) -> tuple[str, str]:
        return app_id, hashlib.sha256(app_secret.encode()).hexdigest()

    async def _post(self, path: str, body: dict[str, object], token: str | None = None) -> dict[str, object]:
        headers = {"content-type": "application/json; charset=utf-8"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        try:
            resp = await self.http.post(self.base_url + path, content=orjson.dumps(body), headers=headers)
        except httpx.HTTPError as exc:
            raise FeishuError(f"Feishu unreachable: {type(exc).__name__}") from exc
        try:
            data = resp.json()
        except ValueError as exc:
            raise FeishuError(f"Feishu answered HTTP {resp.status_code} without JSON") from exc
        if not isinstance(data, dict):
            raise FeishuError(f"Feishu answered HTTP {resp.status_code} with no object")
        return data

    async def tenant_token(self, app_id: str, app_secret: str) -> str:
        key = self._cache_key(app_id, app_secret)
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > self.clock():
            return cached[0]
        data = await self._post(
            "/open-apis/auth/v3/tenant_access_token/internal", {"app_id": app_id, "app_secret": app_secret}
        )
        token = data.get("tenant_access_token")
        if data.get("code") != 0 or not isinstance(token, str):
            raise FeishuError(f"tenant_access_token refused: code {data.get('code')}")
        expire = data.get("expire")
        ttl = float(expire) if isinstance(expire, int | float) else 0.0
        self._tokens[key] = (token, self.clock() + max(ttl - TOKEN_MARGIN_S, 0.0))
        return token

    async def reply_text(self, app_id: str, app_secret: str, message_id: str, text: str, uuid: str) -> None:
        """Replies to `message_id`; `uuid` makes Feishu send at most one reply for it (per hour),
        so trying again after an unclear failure does not answer twice."""
        path = f"/open-apis/im/v1/messages/{quote(message_id, safe='')}/reply"
        body: dict[str, object] = {
            "msg_type": "text",
            "content": orjson.dumps({"text": text}).decode(),
            "uuid": uuid[:50],
        }
        for attempt in range(2):
            token = await self.tenant_token(app_id, app_secret)
            data = await self._post(path, body, token)
            code = data.get("code")
            if code == 0:
                return
            if code in _TOKEN_CODES and attempt == 0:
                self._tokens.pop(self._cache_key(app_id, app_secret), None)
                continue
            raise FeishuError(f"reply refused: code {code}")


@dataclass(frozen=True)
class ModelAnswer:
    text: str
    error: str | None  # the gateway's error code when the model did not answer (the text apologises)


def apology(code: str) -> str:
    return f"Sorry, I cannot answer right now ({code})."


class ModelCaller:
    def __init__(self, http: httpx.AsyncClient, gateway_url: str, max_tokens: int, timeout_s: float) -> None:
        self.http = http
        self.url = gateway_url.rstrip("/") + "/v1/chat/completions"
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s

    async def ask(self, api_key: str, model: str, prompt: str) -> ModelAnswer:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.max_tokens,
        }
        try:
            resp = await self.http.post(
                self.url,
                content=orjson.dumps(body),
                headers={"authorization": f"Bearer {api_key}", "content-type": "application/json"},
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            return ModelAnswer(apology("gateway_unreachable"), f"gateway_unreachable:{type(exc).__name__}")
        try:
            data = resp.json()
        except ValueError:
            data = {}
        if resp.status_code != 200:
            error = data.get("error") if isinstance(data, dict) else None
            code = str(error.get("code") or error.get("type")) if isinstance(error, dict) else ""
            code = code or f"http_{resp.status_code}"
            return ModelAnswer(apology(code), code)
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            return ModelAnswer(apology("bad_answer"), "bad_answer")
        return ModelAnswer(str(text).strip() or "…", None)
