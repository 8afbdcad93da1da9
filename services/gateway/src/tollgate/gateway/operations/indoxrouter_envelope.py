"""IndoxRouter's success envelope and its server-sent events stream.

Envelope: request_id, created_at, duration_ms, provider, model, success, message, data,
finish_reason (chat and completions), usage {tokens_prompt, tokens_completion, tokens_total,
cost (credits), latency (seconds), timestamp}.

Stream (`stream: true`, chat and completions): one `data:` event per upstream chunk,
`{"request_id", "provider", "model", "data": "<text delta>", "finish_reason", "done": false}`,
then the full envelope with `"done": true` (its usage carries the cost) and `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from tollgate.common.money import micros_to_credits
from tollgate.gateway.completions.streaming import DONE, StreamOutcome
from tollgate.gateway.completions.tokens import reported_usage
from tollgate.gateway.pipeline import Result
from tollgate.gateway.pricing.cost import Usage
from tollgate.gateway.providers.base import UpstreamStream


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(
    result: Result,
    provider: str,
    model: str,
    data: Any,
    *,
    message: str = "",
    finish_reason: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    usage = result.usage
    body: dict[str, Any] = {
        "request_id": result.request_id,
        "created_at": iso(result.started_at),
        "duration_ms": round(result.latency_s * 1000, 2),
        "provider": provider,
        "model": model,
        "success": True,
        "message": message,
        "data": data,
    }
    if finish_reason is not None:
        body["finish_reason"] = finish_reason
    body.update(extra or {})
    body["usage"] = {
        "tokens_prompt": usage.tokens_in,
        "tokens_completion": usage.tokens_out,
        "tokens_total": usage.tokens_in + usage.tokens_out,
        "cost": micros_to_credits(result.cost_micros),
        "latency": round(result.latency_s, 3),
        "timestamp": iso(datetime.now(UTC)),
    }
    return body


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


class IndoxRouterRelay:
    """Re-frames the upstream's OpenAI chunks as IndoxRouter's events; accounts exactly once."""

    def __init__(
        self,
        upstream: UpstreamStream,
        head: dict[str, Any],
        settle: Callable[[StreamOutcome], Result],
        finish: Callable[[Result, str, str | None], dict[str, Any]],
    ) -> None:
        self._upstream = upstream
        self._head = head  # request_id, provider, model
        self._settle = settle
        self._finish = finish
        self._text: list[str] = []
        self._chunks = 0
        self._usage: Usage | None = None
        self._reason: str | None = None
        self._status = "client_disconnected"
        self._finished = False

    async def events(self) -> AsyncIterator[bytes]:
        buffer = b""
        try:
            try:
                async for raw in self._upstream.aiter_bytes():
                    buffer = (buffer + raw).replace(b"\r\n", b"\n")
                    while (cut := buffer.find(b"\n\n")) >= 0:
                        out = self._chunk(buffer[:cut])
                        buffer = buffer[cut + 2 :]
                        if out:
                            yield out
            except httpx.HTTPError as exc:
                self._status = (
                    "upstream_timeout" if isinstance(exc, httpx.TimeoutException) else "upstream_error"
                )
            if buffer.strip():
                out = self._chunk(buffer.strip())
                if out:
                    yield out
            if self._status == "client_disconnected":
                self._status = "ok"
            result = self.finish()
            if result.marking is not None:
                await result.marking  # the hold's mark leaves before the stream's last event
            yield _event(self._finish(result, "".join(self._text), self._reason) | self._closing()) + DONE
        finally:
            self.finish()

    def _closing(self) -> dict[str, Any]:
        if self._status == "ok":
            return {"done": True}
        return {
            "done": True,
            "success": False,
            "message": "The upstream stream failed.",
            "error": "provider_error",
        }

    def finish(self) -> Result:
        result = self._settle(StreamOutcome(self._status, self._usage, self._chunks))
        if not self._finished:
            self._finished = True
            asyncio.get_running_loop().create_task(self._upstream.aclose())
        return result

    def _chunk(self, event: bytes) -> bytes | None:
        lines = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
        data = b"\n".join(lines)
        if not data or data == b"[DONE]":
            return None
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(obj, dict):
            return None
        if "error" in obj:
            self._status = "upstream_error"
            return None
        usage = reported_usage(obj.get("usage"))
        if usage is not None:
            self._usage = usage
        piece, reason = "", None
        for choice in obj.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            delta = delta if isinstance(delta, dict) else {}
            text = choice.get("text") if "text" in choice else delta.get("content")
            piece += text if isinstance(text, str) else ""
            reason = choice.get("finish_reason") or reason
        if reason:
            self._reason = reason
        if not piece and not reason:
            return None
        if piece:
            self._chunks += 1
            self._text.append(piece)
        return _event({**self._head, "data": piece, "finish_reason": reason, "done": False})
