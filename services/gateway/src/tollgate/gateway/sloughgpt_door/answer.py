"""SloughGPT's generation answers. The seed shows only what its SDKs read (`response.text`, and
`chunk.text` while streaming); the rest follows its other resources (snake_case, ISO times, credits
as `cost`) and is documented in docs/sloughgpt.md:

    {"id": "gen_<request id>", "object": "generation", "model_id", "text", "finish_reason",
     "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}, "cost", "created_at"}

A batch: {"id", "object": "generation.batch", "model_id", "results": [{"index", "text",
"finish_reason", "usage", "cost"} | {"index", "error": {...}}], "usage", "cost", "created_at"}.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tollgate.common.money import micros_to_credits
from tollgate.gateway.pricing.cost import Usage

# OpenAI's finish reasons as SloughGPT names them; a tool call cannot happen (no tools are sent)
FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter"}


def finish_reason(value: Any) -> str:
    return FINISH_REASONS.get(value, "stop") if isinstance(value, str) else "stop"


def usage_body(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.tokens_in,
        "completion_tokens": usage.tokens_out,
        "total_tokens": usage.tokens_in + usage.tokens_out,
    }


def timestamp(moment: datetime, timespec: str = "auto") -> str:
    """SloughGPT's times: ISO 8601 in UTC with a Z."""
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


def generation_id(request_id: str) -> str:
    return f"gen_{request_id}"


def answer_text(data: dict[str, Any]) -> tuple[str, str]:
    """The text and finish reason of an OpenAI chat completion."""
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content = message.get("content")
    return (content if isinstance(content, str) else ""), finish_reason(choice.get("finish_reason"))


def generation(
    request_id: str, model_id: str, data: dict[str, Any], usage: Usage, cost_micros: int, created: datetime
) -> dict[str, Any]:
    text, reason = answer_text(data)
    return {
        "id": generation_id(request_id),
        "object": "generation",
        "model_id": model_id,
        "text": text,
        "finish_reason": reason,
        "usage": usage_body(usage),
        "cost": micros_to_credits(cost_micros),
        "created_at": timestamp(created),
    }


def batch(
    request_id: str, model_id: str, results: list[dict[str, Any]], cost_micros: int, created: datetime
) -> dict[str, Any]:
    """`cost_micros`: what the batch's answered prompts cost together (summed exactly, in micros)."""
    answered = [r for r in results if "error" not in r]
    total = Usage(
        sum(r["usage"]["prompt_tokens"] for r in answered),
        sum(r["usage"]["completion_tokens"] for r in answered),
    )
    return {
        "id": generation_id(request_id),
        "object": "generation.batch",
        "model_id": model_id,
        "results": results,
        "usage": usage_body(total),
        "cost": micros_to_credits(cost_micros),
        "created_at": timestamp(created),
    }
