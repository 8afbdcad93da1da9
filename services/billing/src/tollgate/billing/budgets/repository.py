"""Every SQL query on budgets, spend counters, the daily cost rollup and key quotas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.budgets.rules import CounterKey, DailyCost


@dataclass(frozen=True, slots=True)
class BudgetRow:
    id: str
    org_id: str
    key_id: int
    period: str
    limit_micros: int
    alert_threshold_pct: int | None
    alert_emails: tuple[str, ...]
    hard_limit: bool


@dataclass(slots=True)
class LimitsSnapshot:
    """What Reserve needs of one org, read in one statement (one snapshot)."""

    budgets_version: int = 0
    budgets: list[tuple[int, str, int]] = field(default_factory=list)  # (key_id, period, limit), hard only
    spent: dict[tuple[int, str], int] = field(default_factory=dict)  # (key_id, period key) -> micros
    quotas: dict[int, int] = field(default_factory=dict)  # key_id -> month quota micros


_BUDGET_COLUMNS = "id, org_id, key_id, period, limit_micros, alert_threshold_pct, alert_emails, hard_limit"

_ADD_SPEND = text(
    """
    INSERT INTO spend_counters AS s (org_id, key_id, period, spent_micros, updated_at)
    SELECT d.org_id, d.key_id, d.period, d.amount, now()
    FROM unnest(CAST(:org_ids AS text[]), CAST(:key_ids AS bigint[]), CAST(:periods AS text[]),
                CAST(:amounts AS bigint[])) AS d(org_id, key_id, period, amount)
    ORDER BY d.org_id, d.period, d.key_id
    ON CONFLICT (org_id, period, key_id) DO UPDATE SET
        spent_micros = s.spent_micros + excluded.spent_micros, updated_at = excluded.updated_at
    RETURNING s.org_id, s.key_id, s.period, s.spent_micros
    """
)

_ADD_DAILY = text(
    """
    INSERT INTO cost_daily AS c (org_id, day, category, cost_micros, requests, tokens, cached_tokens,
                                 cache_write_tokens, reasoning_tokens)
    SELECT * FROM unnest(CAST(:org_ids AS text[]), CAST(:days AS date[]), CAST(:categories AS text[]),
                         CAST(:costs AS bigint[]), CAST(:requests AS bigint[]), CAST(:tokens AS bigint[]),
                         CAST(:cached AS bigint[]), CAST(:written AS bigint[]), CAST(:reasoning AS bigint[]))
    ORDER BY 1, 2, 3
    ON CONFLICT (org_id, day, category) DO UPDATE SET
        cost_micros = c.cost_micros + excluded.cost_micros,
        requests = c.requests + excluded.requests,
        tokens = c.tokens + excluded.tokens,
        cached_tokens = c.cached_tokens + excluded.cached_tokens,
        cache_write_tokens = c.cache_write_tokens + excluded.cache_write_tokens,
        reasoning_tokens = c.reasoning_tokens + excluded.reasoning_tokens
    """
)

_SNAPSHOT = text(
    """
    SELECT 'v' AS kind, 0 AS key_id, '' AS period,
           coalesce((SELECT version FROM budget_versions WHERE org_id = :org_id), 0) AS amount
    UNION ALL
    SELECT 'b', key_id, period, limit_micros FROM budgets WHERE org_id = :org_id AND hard_limit
    UNION ALL
    SELECT 's', key_id, period, spent_micros FROM spend_counters
    WHERE org_id = :org_id AND period IN (:month, :day)
    UNION ALL
    SELECT 'q', key_id, '', month_quota_micros FROM key_quotas WHERE org_id = :org_id
    """
)


async def add_spend(session: AsyncSession, increments: Mapping[CounterKey, int]) -> dict[CounterKey, int]:
    """Adds to each counter (rows locked in a stable order); returns every counter's new total."""
    if not increments:
        return {}
    keys = list(increments)
    result = await session.execute(
        _ADD_SPEND,
        {
            "org_ids": [k[0] for k in keys],
            "key_ids": [k[1] for k in keys],
            "periods": [k[2] for k in keys],
            "amounts": [increments[k] for k in keys],
        },
    )
    return {(r.org_id, r.key_id, r.period): r.spent_micros for r in result}


async def add_daily(session: AsyncSession, rollups: Mapping[tuple[str, date, str], DailyCost]) -> None:
    if not rollups:
        return
    keys = list(rollups)
    await session.execute(
        _ADD_DAILY,
        {
            "org_ids": [k[0] for k in keys],
            "days": [k[1] for k in keys],
            "categories": [k[2] for k in keys],
            "costs": [rollups[k].cost_micros for k in keys],
            "requests": [rollups[k].requests for k in keys],
            "tokens": [rollups[k].tokens for k in keys],
            "cached": [rollups[k].cached_tokens for k in keys],
            "written": [rollups[k].cache_write_tokens for k in keys],
            "reasoning": [rollups[k].reasoning_tokens for k in keys],
        },
    )


async def limits_snapshot(session: AsyncSession, org_id: str, month: str, day: str) -> LimitsSnapshot:
    snap = LimitsSnapshot()
    rows = await session.execute(_SNAPSHOT, {"org_id": org_id, "month": month, "day": day})
    for r in rows:
        if r.kind == "v":
            snap.budgets_version = int(r.amount)
        elif r.kind == "b":
            snap.budgets.append((int(r.key_id), r.period, int(r.amount)))
        elif r.kind == "s":
            snap.spent[(int(r.key_id), r.period)] = int(r.amount)
        else:
            snap.quotas[int(r.key_id)] = int(r.amount)
    return snap


def _budget(r: Row[Any]) -> BudgetRow:
    return BudgetRow(
        r.id,
        r.org_id,
        r.key_id,
        r.period,
        r.limit_micros,
        r.alert_threshold_pct,
        tuple(r.alert_emails or ()),
        r.hard_limit,
    )


async def budgets_of(session: AsyncSession, org_ids: Sequence[str]) -> list[BudgetRow]:
    if not org_ids:
        return []
    rows = await session.execute(
        text(f"SELECT {_BUDGET_COLUMNS} FROM budgets WHERE org_id = ANY(CAST(:orgs AS text[]))"),
        {"orgs": list(org_ids)},
    )
    return [_budget(r) for r in rows]


async def quotas_of(session: AsyncSession, key_ids: Sequence[int]) -> dict[int, int]:
    if not key_ids:
        return {}
    rows = await session.execute(
        text(
            "SELECT key_id, month_quota_micros FROM key_quotas"
            " WHERE key_id = ANY(CAST(:keys AS bigint[])) AND month_quota_micros > 0"
        ),
        {"keys": list(key_ids)},
    )
    return {int(r.key_id): int(r.month_quota_micros) for r in rows}


async def record_quota(session: AsyncSession, org_id: str, key_id: int, quota_micros: int) -> None:
    await session.execute(
        text(
            """
            INSERT INTO key_quotas (key_id, org_id, month_quota_micros, updated_at)
            VALUES (:key_id, :org_id, :quota, now())
            ON CONFLICT (key_id) DO UPDATE SET
                org_id = excluded.org_id, month_quota_micros = excluded.month_quota_micros,
                updated_at = excluded.updated_at
            """
        ),
        {"key_id": key_id, "org_id": org_id, "quota": quota_micros},
    )


async def upsert_budget(session: AsyncSession, b: BudgetRow) -> BudgetRow:
    row = (
        await session.execute(
            text(
                f"""
                INSERT INTO budgets ({_BUDGET_COLUMNS}, updated_at)
                VALUES (:id, :org_id, :key_id, :period, :limit_micros, :pct, :emails, :hard, now())
                ON CONFLICT (org_id, key_id, period) DO UPDATE SET
                    limit_micros = excluded.limit_micros, alert_threshold_pct = excluded.alert_threshold_pct,
                    alert_emails = excluded.alert_emails, hard_limit = excluded.hard_limit,
                    updated_at = excluded.updated_at
                RETURNING {_BUDGET_COLUMNS}
                """
            ),
            {
                "id": b.id,
                "org_id": b.org_id,
                "key_id": b.key_id,
                "period": b.period,
                "limit_micros": b.limit_micros,
                "pct": b.alert_threshold_pct,
                "emails": list(b.alert_emails),
                "hard": b.hard_limit,
            },
        )
    ).one()
    return _budget(row)


async def delete_budget(session: AsyncSession, org_id: str, key_id: int, period: str) -> bool:
    result = await session.execute(
        text("DELETE FROM budgets WHERE org_id = :o AND key_id = :k AND period = :p RETURNING id"),
        {"o": org_id, "k": key_id, "p": period},
    )
    return result.first() is not None


async def bump_version(session: AsyncSession, org_id: str) -> int:
    """Takes the org's budget lock (serialising its budget changes) and returns the new version."""
    return int(
        (
            await session.execute(
                text(
                    """
                    INSERT INTO budget_versions AS v (org_id, version) VALUES (:o, 1)
                    ON CONFLICT (org_id) DO UPDATE SET version = v.version + 1
                    RETURNING v.version
                    """
                ),
                {"o": org_id},
            )
        ).scalar_one()
    )


async def counter_totals(session: AsyncSession, keys: Sequence[CounterKey]) -> dict[CounterKey, int]:
    """Current totals of the given counters (those that exist)."""
    if not keys:
        return {}
    rows = await session.execute(
        text(
            """
            SELECT s.org_id, s.key_id, s.period, s.spent_micros
            FROM unnest(CAST(:org_ids AS text[]), CAST(:key_ids AS bigint[]), CAST(:periods AS text[]))
                AS k(org_id, key_id, period)
            JOIN spend_counters s USING (org_id, period, key_id)
            """
        ),
        {"org_ids": [k[0] for k in keys], "key_ids": [k[1] for k in keys], "periods": [k[2] for k in keys]},
    )
    return {(r.org_id, r.key_id, r.period): int(r.spent_micros) for r in rows}


async def lock_counter(session: AsyncSession, org_id: str, key_id: int, period: str) -> int:
    """The counter's spend, row-locked (created at 0 if missing) until the transaction ends: a
    settlement adding to it waits, then reads the budget this transaction committed."""
    return int(
        (
            await session.execute(
                text(
                    """
                    INSERT INTO spend_counters AS s (org_id, key_id, period, spent_micros)
                    VALUES (:o, :k, :p, 0)
                    ON CONFLICT (org_id, period, key_id) DO UPDATE SET spent_micros = s.spent_micros
                    RETURNING s.spent_micros
                    """
                ),
                {"o": org_id, "k": key_id, "p": period},
            )
        ).scalar_one()
    )


async def spent_in(session: AsyncSession, org_id: str, periods: Sequence[str]) -> dict[tuple[int, str], int]:
    """(key_id, period key) -> spent for an org's counters in the given periods."""
    rows = await session.execute(
        text(
            "SELECT key_id, period, spent_micros FROM spend_counters"
            " WHERE org_id = :o AND period = ANY(CAST(:p AS text[]))"
        ),
        {"o": org_id, "p": list(periods)},
    )
    return {(int(r.key_id), r.period): int(r.spent_micros) for r in rows}


class DailyRow(NamedTuple):
    day: date
    category: str
    cost_micros: int
    requests: int
    tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


async def daily_costs(session: AsyncSession, org_id: str, start: date, end: date) -> list[DailyRow]:
    """The rollup's rows between start and end, inclusive."""
    rows = await session.execute(
        text(
            "SELECT day, category, cost_micros, requests, tokens, cached_tokens, cache_write_tokens,"
            " reasoning_tokens FROM cost_daily"
            " WHERE org_id = :o AND day BETWEEN :s AND :e ORDER BY day, category"
        ),
        {"o": org_id, "s": start, "e": end},
    )
    return [DailyRow(r.day, r.category, *(int(v) for v in tuple(r)[2:])) for r in rows]
