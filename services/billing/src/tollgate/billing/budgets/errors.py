"""Errors of the budget and cost routes (rendered in SloughGPT's envelope by billing/envelope.py)."""

from __future__ import annotations

from typing import Any

from tollgate.common.errors import InvalidRequest


class InvalidParameter(InvalidRequest):
    """A bad parameter; `details` names it and echoes the value, as SloughGPT shows."""

    def __init__(self, message: str, *, param: str, value: Any, **details: Any) -> None:
        super().__init__(message, param=param)
        self.details: dict[str, Any] = {"parameter": param, "value": value, **details}
