"""Response bodies of the wallet routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class CreditsResponse(BaseModel):
    object: Literal["credits"] = "credits"
    org_id: str
    balance: float  # credits, for display; the *_micros fields are exact
    balance_micros: int
    held_micros: int
    available_micros: int
