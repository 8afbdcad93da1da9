"""Amazon Bedrock's Converse API (`POST {endpoint}/model/{modelId}/converse`, `/converse-stream`)
behind the OpenAI chat dialect, signed with SigV4 by botocore's signer.

The translations live beside this module, one role each: bedrock_converse_request (OpenAI chat
body → Converse body, on content_blocks, which it shares with anthropic), bedrock_converse_answer
(the answer → an OpenAI chat completion), bedrock_converse_stream (the binary event stream,
`application/vnd.amazon.eventstream`, → OpenAI chunks), bedrock_converse_errors (refusals →
OpenAI's envelope).

Credentials: the catalog keeps `{region, accessKeyId, secretAccessKey, sessionToken}` encrypted
as the model's secret (catalog/service.py); it reaches this module as `target.api_key` (JSON).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tollgate.gateway.pricing.cost import Operation
from tollgate.gateway.providers.base import (
    Provider,
    UpstreamRequest,
    UpstreamStream,
    UpstreamTarget,
)
from tollgate.gateway.providers.bedrock_converse_answer import chat_completion, finish_reason, openai_usage
from tollgate.gateway.providers.bedrock_converse_errors import openai_error
from tollgate.gateway.providers.bedrock_converse_request import PROVIDER, request_body
from tollgate.gateway.providers.bedrock_converse_stream import ConverseChatStream, StreamTranslator
from tollgate.gateway.providers.documents import DOCS_MARK

__all__ = [  # what callers and tests import from here, wherever it is defined
    "PROVIDER",
    "BedrockConverse",
    "ConverseChatStream",
    "StreamTranslator",
    "chat_completion",
    "credentials",
    "finish_reason",
    "openai_error",
    "openai_usage",
    "request_body",
    "sign",
]

DEFAULT_REGION = "us-east-1"


def credentials(secret: str | None) -> dict[str, str]:
    """The model's credential bundle (JSON, as catalog/service.py stores it)."""
    if not secret:
        return {}
    try:
        data = orjson.loads(secret)
    except orjson.JSONDecodeError:
        return {"secretAccessKey": secret}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


class BedrockConverse(Provider):
    lean = False

    def supports(self, operation: Operation) -> bool:
        return operation is Operation.CHAT

    def request(
        self, target: UpstreamTarget, operation: Operation, payload: dict[str, Any], *, stream: bool
    ) -> UpstreamRequest:
        payload.pop(DOCS_MARK, None)  # doc parts go up as document blocks (bedrock_converse_request)
        body = orjson.dumps(request_body(payload, target.max_tokens_default))
        path = "/converse-stream" if stream else "/converse"
        url = f"{target.api_base}/model/{quote(target.upstream_model, safe='')}{path}"
        headers = {"content-type": "application/json", "accept": "application/json"}
        if stream:
            headers["accept"] = "application/vnd.amazon.eventstream"
        return UpstreamRequest(url, body, sign(url, body, headers, credentials(target.api_key)))

    def answer(self, operation: Operation, data: dict[str, Any]) -> dict[str, Any]:
        return chat_completion(data)

    def stream(self, operation: Operation, upstream: UpstreamStream) -> UpstreamStream:
        return ConverseChatStream(upstream)

    def error_body(self, status_code: int, body: bytes) -> bytes:
        return orjson.dumps(openai_error(status_code, body))

    def error_message(self, status_code: int, body: bytes) -> str:
        message: str = openai_error(status_code, body)["error"]["message"]
        return message


def sign(url: str, body: bytes, headers: dict[str, str], creds: dict[str, str]) -> dict[str, str]:
    """SigV4 headers (Authorization, X-Amz-Date, X-Amz-Security-Token) for service `bedrock`."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    aws = Credentials(
        creds.get("accessKeyId", ""), creds.get("secretAccessKey", ""), creds.get("sessionToken") or None
    )
    SigV4Auth(aws, "bedrock", creds.get("region") or DEFAULT_REGION).add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}
