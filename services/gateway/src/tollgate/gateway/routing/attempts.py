"""Attempts along a chain: retries on the same deployment with exponential backoff, then the next
deployment (the model's next, then its fallbacks'), all inside one deadline; cooling-down deployments
skipped (breaker.py, keyed by `CatalogEntry.deployment`: the model's name for a model with one
deployment, "<model>/<label>" for one with several).

An attempt raises AttemptFailed for what another try may fix: a connection error, a timeout, a 429
or a 5xx (retried on the same deployment), or another upstream failure such as a 401 (the next one,
no retry). A refusal that is the caller's fault (400 / 413 / 422: UpstreamRejected) is not an attempt's
failure: it propagates at once, with no retry and no fallback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from tollgate.common.errors import TollgateError, UpstreamError, UpstreamTimeout
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.routing.breaker import Clock, Cooldowns
from tollgate.gateway.routing.chain import Link
from tollgate.gateway.routing.failures import AttemptFailed, UpstreamRejected, timed_out

R = TypeVar("R")
Sleep = Callable[[float], Awaitable[None]]


class ChainFailed(Exception):
    """Every attempt failed (or the deadline passed): the last failure and the deployments tried
    (model names where a model has one deployment)."""

    def __init__(
        self, last: AttemptFailed, tried: list[str], attempts: int, *, deployments: bool = False
    ) -> None:
        super().__init__(last.message)
        self.last = last
        self.tried = tried
        self.attempts = attempts
        self.deployments = deployments  # whether `tried` names deployments of several-deployment models

    def error(self) -> Exception:
        """What the caller gets: a 429 passes through as before (they can back off), else 502 / 504."""
        last = self.last
        if last.status_code == 429:
            return UpstreamRejected(429, last.body)
        message = last.message
        if self.attempts > 1:
            count = len(self.tried)
            what = "deployment" if self.deployments else "model"
            models = what if count == 1 else f"{what}s"
            message += f" {count} {models} tried ({', '.join(self.tried)}), {self.attempts} attempts."
        error: TollgateError = (
            UpstreamTimeout(message) if last.status == "upstream_timeout" else UpstreamError(message)
        )
        return error


class Router:
    def __init__(
        self,
        cooldowns: Cooldowns | None = None,
        *,
        retries: int = 1,
        backoff_s: float = 0.05,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.cooldowns = cooldowns if cooldowns is not None else Cooldowns(clock=clock)
        self._retries = retries
        self._backoff_s = backoff_s
        self._clock = clock
        self._sleep = sleep

    def succeeded(self, served: CatalogEntry | str) -> None:
        """A call outside run() answered (the fast path): `served` is its entry (or its deployment id)."""
        self.cooldowns.succeeded(served if isinstance(served, str) else served.deployment)

    async def run(
        self,
        links: Sequence[Link],
        attempt: Callable[[Link, float], Awaitable[R]],
        timeout_s: float,
        first_failure: AttemptFailed | None = None,
    ) -> tuple[Link, R]:
        """The link that answered and its answer; `attempt(link, seconds_left)`. `first_failure`:
        links[0] was already tried once (the fast path's attempt) and failed so."""
        deadline = self._clock() + timeout_s
        tried: list[str] = []
        attempts = 0
        several = any(link.entry.deployment_id for link in links)
        last = first_failure
        if first_failure is not None:
            self._failed(links[0], tried)
            attempts = 1
        for link in self.cooldowns.usable(links, _deployment):
            tries = 0
            if first_failure is not None and link is links[0]:
                if not first_failure.retry or self.cooldowns.cooling(link.entry.deployment):
                    continue
                tries = 1
            while tries <= self._retries:
                if tries:  # a retry on the same model waits a little, doubling each time
                    await self._sleep(
                        min(self._backoff_s * 2 ** (tries - 1), max(deadline - self._clock(), 0))
                    )
                left = deadline - self._clock()
                if left <= 0:
                    raise ChainFailed(
                        last or timed_out(),
                        tried or [link.entry.deployment],
                        max(attempts, 1),
                        deployments=several,
                    )
                tries += 1
                attempts += 1
                try:
                    answer = await attempt(link, left)
                except AttemptFailed as failure:
                    last = failure
                    self._failed(link, tried)
                    if not failure.retry or self.cooldowns.cooling(link.entry.deployment):
                        break  # no retry on a deployment that just started cooling down: the next one
                    continue
                self.cooldowns.succeeded(link.entry.deployment)
                return link, answer
        assert last is not None  # at least one link is always attempted
        raise ChainFailed(last, tried, attempts, deployments=several)

    def _failed(self, link: Link, tried: list[str]) -> None:
        deployment = link.entry.deployment
        self.cooldowns.failed(deployment)
        if deployment not in tried:
            tried.append(deployment)


def _deployment(link: Link) -> str:
    return link.entry.deployment
