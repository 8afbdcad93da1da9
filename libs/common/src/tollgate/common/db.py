"""One async SQLAlchemy engine per process; the request (or consumed batch) owns the transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from tollgate.common.waits import timed

if TYPE_CHECKING:
    from tollgate.common.settings import ServiceSettings
    from tollgate.common.telemetry import Tracing


def make_engine(database_url: str, *, pool_size: int = 10, max_overflow: int | None = None) -> AsyncEngine:
    """At most pool_size + max_overflow connections (max_overflow defaults to pool_size): services pass
    their <P>DB_POOL_SIZE / <P>DB_MAX_OVERFLOW settings, which deploy/k8s fits under max_connections."""
    overflow = pool_size if max_overflow is None else max_overflow
    return create_async_engine(database_url, pool_size=pool_size, max_overflow=overflow, pool_pre_ping=True)


def service_engine(settings: ServiceSettings, tracing: Tracing) -> AsyncEngine:
    """A service process's one engine: sized by its pool settings, its statements traced when the
    process exports spans."""
    engine = make_engine(
        settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )
    tracing.instrument_engine(engine)
    return engine


def database_health(engine: AsyncEngine, timeout_s: float = 2.0) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A /healthz check: the database answers `SELECT 1` in time (503 in the envelope if not)."""
    from tollgate.common.errors import ServiceUnavailable

    async def ping() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def check() -> dict[str, Any]:
        try:
            await timed(ping(), timeout_s)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise ServiceUnavailable(f"Database unavailable: {type(exc).__name__}.") from exc
        return {"database": "ok"}

    return check


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def session_scope(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Dependency body: one session per request, committed at its end, rolled back on error."""
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
