"""The guard API's bodies: /api/guard/auth, /api/guard/log-usage, and the admin secret route."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ModelName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, strict=True)
]
Tokens = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]
# Credits as a JSON number, converted once to integer micros; the cap keeps micros inside a bigint.
Credits = Annotated[float, Field(strict=True, ge=0, le=1_000_000_000, allow_inf_nan=False)]
KeyId = Annotated[int, Field(strict=True, ge=1, le=9_223_372_036_854_775_807)]


class GuardAuthRequest(BaseModel):
    # The seed's clients send chat bodies; fields we do not judge (temperature, …) are ignored.
    model_config = ConfigDict(extra="ignore")

    model: ModelName
    messages: list[dict[str, Any]] = Field(default_factory=list, max_length=10_000)


class GuardAuthResponse(BaseModel):
    authenticated: bool = True
    key_id: int
    org_id: str
    user_id: str
    model: str
    allowed: bool


class LogUsageRequest(BaseModel):
    # The seed also sends temperature, top_p, input_cost, output_cost, max_tokens, messages:
    # accepted and ignored; total_cost is what is charged.
    model_config = ConfigDict(extra="ignore")

    model: ModelName
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    total_cost: Credits


class LogUsageResponse(BaseModel):
    logged: bool = True
    event_id: str


class IssueSecretRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: KeyId


class IssuedSecret(BaseModel):
    id: int
    secret_key: str  # shown once; only its HMAC is kept
