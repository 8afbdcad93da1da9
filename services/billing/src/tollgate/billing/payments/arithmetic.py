"""Pure money arithmetic of packages and refunds, in integer micros (no floats, no I/O)."""

from __future__ import annotations

BPS_DENOMINATOR = 10_000  # basis points: 1000 bps = 10%


def bonus_micros(credits_micros: int, bonus_bps: int) -> int:
    """A package's bonus credits, rounded down to a whole micro-credit ($25 at 10% -> 2.5 credits)."""
    if credits_micros < 0 or not 0 <= bonus_bps <= BPS_DENOMINATOR:
        raise ValueError("credits must be >= 0 and the bonus between 0 and 10000 bps")
    return credits_micros * bonus_bps // BPS_DENOMINATOR


def refund_credits(*, granted_micros: int, paid_micros: int, refunded_before: int, amount_micros: int) -> int:
    """Credits to take back when `amount_micros` of a payment is refunded.

    Proportional to the money returned (the bonus goes back with the money it came with), computed
    cumulatively so the partial refunds of one payment always add up to exactly what it granted:
    credits taken back after refunding r = floor(granted * r / paid).
    """
    if paid_micros <= 0 or granted_micros < 0:
        raise ValueError("a refundable payment has paid > 0 and granted >= 0")
    if amount_micros <= 0 or refunded_before < 0 or refunded_before + amount_micros > paid_micros:
        raise ValueError("the refund must be positive and within what is left of the payment")
    after = granted_micros * (refunded_before + amount_micros) // paid_micros
    before = granted_micros * refunded_before // paid_micros
    return after - before
