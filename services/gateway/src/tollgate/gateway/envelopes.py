"""Error envelopes by route family. A route names its family in `request.state.envelope` before
it can fail; anything else gets OpenAI's envelope (create_app's default).

- credit_chat, the credit chat API (`POST /api/v1/chat`, `GET /api/models`):
  `{"error": "<message>"}`, plus `credits_required` / `credits_available` on a 402, as it shows.
- indoxrouter, IndoxRouter (`/chat/completions`, `/completions`, `/embeddings`,
  `/images/generations`, `/models/{p}/{m}`):
  `{"error": "<code>", "message": ..., "status_code": ..., "details": {...}}`.
- sloughgpt, SloughGPT (`POST /embeddings` with its body):
  `{"error": {"code", "message", "details", "request_id"}}`.
- anthropic (`/v1/messages`, `/v1/messages/count_tokens`):
  `{"type": "error", "error": {"type", "message"}, "request_id"}` with Anthropic's error type for
  the status (anthropic_door/).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request

from tollgate.common.errors import TollgateError
from tollgate.common.http import default_error_renderer
from tollgate.common.money import MICROS_PER_CREDIT
from tollgate.common.sloughgpt import SLOUGHGPT_CODES, sloughgpt_error_body

CREDIT_CHAT = "credit_chat"
INDOXROUTER = "indoxrouter"
SLOUGHGPT = "sloughgpt"
ANTHROPIC = "anthropic"

_INDOXROUTER_CODES = {
    400: "invalid_request",
    401: "authentication_error",
    403: "permission_denied",
    404: "not_found",
    429: "rate_limit_exceeded",
}
# Anthropic's error type for each status it documents; any other 4xx is an invalid request and any
# other 5xx an api_error (502 and 504 included: Anthropic's SDKs retry both)
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
# Money refusals keep their own code (contract: insufficient_credits, budget_exceeded, quota_exceeded).
_MONEY_CODES = frozenset({"insufficient_credits", "budget_exceeded", "quota_exceeded"})
# SloughGPT in front of a model: a 503 is its MODEL_BUSY
_SLOUGHGPT_CODES = {**SLOUGHGPT_CODES, 503: "MODEL_BUSY"}


def credits(micros: int) -> int | float:
    """Credits for a JSON body: a whole number stays an integer (the credit chat API shows `1`, `99`)."""
    if micros % MICROS_PER_CREDIT == 0:
        return micros // MICROS_PER_CREDIT
    return float(Decimal(micros) / MICROS_PER_CREDIT)


def _money(exc: TollgateError) -> dict[str, Any]:
    required = getattr(exc, "required_micros", None)
    available = getattr(exc, "available_micros", None)
    if required is None or available is None:
        return {}
    return {"credits_required": credits(required), "credits_available": credits(available)}


def credit_chat_body(exc: TollgateError) -> dict[str, Any]:
    money = _money(exc)
    if exc.status_code == 401:
        return {"error": "Invalid API key"}
    if exc.code == "insufficient_credits" and money:
        required, available = money["credits_required"], money["credits_available"]
        return {"error": f"Insufficient credits. Required: {required}, Available: {available}", **money}
    if exc.code in _MONEY_CODES:  # not in the credit chat API: its message, its code, the amounts
        return {"error": exc.message, "code": exc.code, **money}
    return {"error": exc.message}


def indoxrouter_body(exc: TollgateError) -> dict[str, Any]:
    if exc.code in _MONEY_CODES:
        code = exc.code
    elif exc.status_code >= 500 or exc.code == "provider_error":
        code = "provider_error" if exc.code.startswith(("upstream", "provider")) else exc.code
    else:
        code = _INDOXROUTER_CODES.get(exc.status_code, exc.code)
    details: dict[str, Any] = {"code": exc.code, **_money(exc)}
    if exc.param:
        details["param"] = exc.param
    return {"error": code, "message": exc.message, "status_code": exc.status_code, "details": details}


def sloughgpt_body(request: Request, exc: TollgateError) -> dict[str, Any]:
    return sloughgpt_error_body(request, exc, extra_details=_money(exc), by_status=_SLOUGHGPT_CODES)


def anthropic_body(request: Request, exc: TollgateError) -> dict[str, Any]:
    status = exc.status_code
    kind = _ANTHROPIC_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": exc.message}}
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    return body


def gateway_error_renderer(request: Request, exc: TollgateError) -> dict[str, Any]:
    envelope = request.scope.get("state", {}).get("envelope")
    if envelope == CREDIT_CHAT:
        return credit_chat_body(exc)
    if envelope == INDOXROUTER:
        return indoxrouter_body(exc)
    if envelope == SLOUGHGPT:
        return sloughgpt_body(request, exc)
    if envelope == ANTHROPIC:
        return anthropic_body(request, exc)
    return default_error_renderer(request, exc)
