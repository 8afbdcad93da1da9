"""Wake-ups from PostgreSQL: a connection that LISTENs on one channel and calls back on each NOTIFY.

Triggers send the notifications (migration 0004): `training_outbox` when outbox records
are inserted, `training_jobs` when a job is created or its status or cancel flag changes. PostgreSQL
delivers them when the writing transaction commits, whichever process wrote (API, worker, job
process), so the loops that used to poll for such rows wait for them instead and keep a slow poll
only as the fallback for a notification missed while the connection was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "training_outbox"
JOBS_CHANNEL = "training_jobs"


class NotifyListener:
    """Calls `wake` for every NOTIFY on `channel`, and once on each (re)connect (for what was
    committed before the LISTEN took effect).

    The connection is the engine's (same URL, TLS and credentials), taken out of the pool for good:
    it is invalidated, not returned, when listening ends, so no pooled connection keeps a LISTEN.
    """

    def __init__(
        self, engine: AsyncEngine, channel: str, *, retry_s: float = 1.0, check_s: float = 30.0
    ) -> None:
        self._engine = engine
        self._channel = channel
        self._retry_s = retry_s
        self._check_s = check_s
        self._backoff = retry_s

    async def run(self, wake: Callable[[], None]) -> None:
        while True:
            try:
                await self._listen(wake)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning(
                    "LISTEN connection lost; polling until it is back",
                    extra={"channel": self._channel},
                    exc_info=True,
                )
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, 10.0)

    async def _listen(self, wake: Callable[[], None]) -> None:
        conn = await self._engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(f"LISTEN {self._channel}")
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            self._backoff = self._retry_s
            wake()
            while True:
                async for _ in driver.notifies(timeout=self._check_s):
                    wake()
                await conn.exec_driver_sql("SELECT 1")  # a quiet channel, or a dead connection?
        finally:
            await conn.invalidate()
            await conn.close()


@contextlib.asynccontextmanager
async def listening(listener: NotifyListener | None, wake: Callable[[], None]) -> AsyncIterator[None]:
    """Runs `listener` (when there is one) in the background while the block runs, and stops it,
    waiting for its connection to close, before the block's own cleanup goes on."""
    if listener is None:
        yield
        return
    task = asyncio.create_task(listener.run(wake))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
