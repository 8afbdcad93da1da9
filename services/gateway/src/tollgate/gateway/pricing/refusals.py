"""Billing's refusals of a hold, as the errors the routes render (contract: ReserveResponse.reason).

insufficient_credits -> 402 insufficient_credits; budget_exceeded -> 402 budget_exceeded;
quota_exceeded -> 429 quota_exceeded. Each carries what was required and what was available,
so the credit chat API's 402 body can show them.
"""

from __future__ import annotations

from tollgate.common.errors import InsufficientCredits, TollgateError
from tollgate.common.money import micros_to_credits


class CreditsRefused(InsufficientCredits):
    """402: the wallet (insufficient_credits) or a budget's hard limit (budget_exceeded) refused."""

    def __init__(self, message: str, *, code: str, required_micros: int, available_micros: int) -> None:
        super().__init__(message, code=code)
        self.required_micros = required_micros
        self.available_micros = available_micros


class QuotaExceeded(TollgateError):
    """429: the key's monthly quota (the Bedrock-style gateway's month_quota) would be exceeded."""

    status_code = 429
    error_type = "insufficient_quota"
    code = "quota_exceeded"

    def __init__(self, message: str, *, required_micros: int, available_micros: int) -> None:
        super().__init__(message)
        self.required_micros = required_micros
        self.available_micros = available_micros


REASONS = ("insufficient_credits", "budget_exceeded", "quota_exceeded")


def refusal(reason: str, required_micros: int, available_micros: int) -> TollgateError:
    """The error for a refused hold; an empty or unknown reason counts as insufficient_credits."""
    available = max(available_micros, 0)
    if reason == "quota_exceeded":
        return QuotaExceeded(
            f"This API key's monthly quota does not cover this request (up to "
            f"{micros_to_credits(required_micros):.6f} credits).",
            required_micros=required_micros,
            available_micros=available,
        )
    if reason == "budget_exceeded":
        return CreditsRefused(
            f"This request would exceed a budget's hard limit (it may cost up to "
            f"{micros_to_credits(required_micros):.6f} credits).",
            code="budget_exceeded",
            required_micros=required_micros,
            available_micros=available,
        )
    return CreditsRefused(
        f"Insufficient credits: this request may cost up to {micros_to_credits(required_micros):.6f} "
        f"credits and {micros_to_credits(available):.6f} are available.",
        code="insufficient_credits",
        required_micros=required_micros,
        available_micros=available,
    )
