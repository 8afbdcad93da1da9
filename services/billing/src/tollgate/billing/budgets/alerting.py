"""Which thresholds a settlement batch crossed, as alert facts (pure: data in, facts out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tollgate.billing.alerts.schemas import AlertFact
from tollgate.billing.budgets.repository import BudgetRow
from tollgate.billing.budgets.rules import (
    DEFAULT_THRESHOLDS,
    CounterKey,
    crossed_thresholds,
    period_kind,
    thresholds_for,
)


def alert_facts(
    increments: Mapping[CounterKey, int],
    totals: Mapping[CounterKey, int],
    budgets: Sequence[BudgetRow],
    quotas: Mapping[int, int],
    balances: Mapping[str, int],
) -> list[AlertFact]:
    """One fact per (budget or quota, period, threshold) crossed by a counter's move from
    total - increment to total. The row lock taken by the counter's upsert orders concurrent
    batches, so each crossing is seen by exactly one of them; record_alerts dedupes regardless."""
    by_scope: dict[tuple[str, int, str], BudgetRow] = {(b.org_id, b.key_id, b.period): b for b in budgets}
    facts: list[AlertFact] = []
    for counter, added in increments.items():
        org_id, key_id, period = counter
        new = totals.get(counter)
        if new is None:
            continue
        previous = new - added
        balance = balances.get(org_id, 0)
        budget = by_scope.get((org_id, key_id, period_kind(period)))
        if budget is not None:
            for pct in crossed_thresholds(
                previous, new, budget.limit_micros, thresholds_for(budget.alert_threshold_pct)
            ):
                facts.append(
                    AlertFact(
                        org_id=org_id,
                        key_id=key_id or None,
                        kind="budget_threshold",
                        budget_id=budget.id,
                        period=period,
                        threshold_pct=pct,
                        spent_micros=new,
                        limit_micros=budget.limit_micros,
                        balance_micros=balance,
                        emails=budget.alert_emails,
                    )
                )
        quota = quotas.get(key_id, 0) if key_id else 0
        if quota > 0 and period_kind(period) == "monthly":
            for pct in crossed_thresholds(previous, new, quota, DEFAULT_THRESHOLDS):
                facts.append(
                    AlertFact(
                        org_id=org_id,
                        key_id=key_id,
                        kind="quota_threshold",
                        budget_id="",
                        period=period,
                        threshold_pct=pct,
                        spent_micros=new,
                        limit_micros=quota,
                        balance_micros=balance,
                    )
                )
    return facts
