"""Retry schedule of alert deliveries: exponential backoff, capped, then failed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    base_s: float = 30.0
    cap_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("need max_attempts >= 1 and 0 < base_s <= cap_s")

    def delay_after(self, attempt: int) -> float | None:
        """Seconds to wait after failed attempt `attempt` (1-based); None once it was the last."""
        if attempt >= self.max_attempts:
            return None
        return min(self.cap_s, self.base_s * 2 ** (attempt - 1))

    def schedule(self) -> list[float]:
        """Every wait between the first and the last attempt, in order."""
        return [d for n in range(1, self.max_attempts) if (d := self.delay_after(n)) is not None]
