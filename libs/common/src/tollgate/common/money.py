"""Units only: amounts are integer micro-credits (1 credit = 1,000,000 micros), never floats."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MICROS_PER_CREDIT = 1_000_000


def credits_to_micros(value: float | int | str | Decimal) -> int:
    """Converts a decimal credit amount given by a client (e.g. 0.23) to micros, exactly."""
    try:
        dec = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not dec.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return int((dec * MICROS_PER_CREDIT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def micros_to_credits(micros: int) -> float:
    """For JSON responses only; stored and summed amounts stay integers."""
    return micros / MICROS_PER_CREDIT
