"""Provider name (a catalog model's `provider`) → the provider that speaks its dialect."""

from __future__ import annotations

from tollgate.gateway.providers.anthropic import Anthropic
from tollgate.gateway.providers.base import Provider
from tollgate.gateway.providers.bedrock_converse import BedrockConverse
from tollgate.gateway.providers.openai_compatible import OpenAICompatible

OPENAI_COMPATIBLE = OpenAICompatible()
ANTHROPIC = Anthropic()
BEDROCK_CONVERSE = BedrockConverse()

PROVIDERS: dict[str, Provider] = {
    "openai-compatible": OPENAI_COMPATIBLE,
    "openai": OPENAI_COMPATIBLE,
    "anthropic": ANTHROPIC,
    "bedrock-converse": BEDROCK_CONVERSE,
}


def provider_for(name: str) -> Provider:
    """The catalog only saves the names above; any other (an older row) speaks OpenAI's dialect."""
    return PROVIDERS.get(name, OPENAI_COMPATIBLE)
