"""Cooldowns (a circuit breaker per deployment, keyed by `CatalogEntry.deployment`: the model's name
for a model with one deployment, "<model>/<label>" for one with several): a deployment that failed
`threshold` times in a row is skipped for `cooldown_s`, then tried again; one success clears its count.

State is per gateway process, in memory: each worker learns on its own which deployments fail, and a
restart forgets it. That is enough to stop hammering a dead upstream; nothing is shared or stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

Clock = Callable[[], float]
T = TypeVar("T")


class Cooldowns:
    def __init__(
        self, *, threshold: int = 3, cooldown_s: float = 30.0, clock: Clock = time.monotonic
    ) -> None:
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failures: dict[str, int] = {}  # deployment → failures in a row
        self._until: dict[str, float] = {}  # deployment → when its cooldown ends

    def cooling(self, deployment: str) -> bool:
        until = self._until.get(deployment)
        if until is None:
            return False
        if self._clock() < until:
            return True
        del self._until[deployment]  # the cooldown is over: the next attempt decides
        self._failures[deployment] = self._threshold - 1  # one more failure and it cools down again
        return False

    def failed(self, deployment: str) -> None:
        count = self._failures.get(deployment, 0) + 1
        self._failures[deployment] = count
        if self._threshold > 0 and count >= self._threshold:
            self._until[deployment] = self._clock() + self._cooldown_s

    def succeeded(self, deployment: str) -> None:
        if self._failures:  # the hot path: nothing has failed, nothing to clear
            self._failures.pop(deployment, None)

    def usable(self, links: Sequence[T], name: Callable[[T], str]) -> list[T]:
        """The links not cooling down, in order; all cooling down: the first alone, tried anyway."""
        ready = [link for link in links if not self.cooling(name(link))]
        return ready or [links[0]]
