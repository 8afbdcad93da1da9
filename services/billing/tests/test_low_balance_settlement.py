"""Low-balance alerts on the real (scratch) PostgreSQL: a settlement batch that takes the wallet
below the threshold fires once (concurrent batches, redeliveries), a credit re-arms it, setting a
threshold above the balance fires at once, and a setting change racing a batch still fires once."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from billing_helpers import new_org
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.budgets import low_balance_service
from tollgate.billing.budgets.schemas import LowBalanceSet
from tollgate.billing.payments import refunds
from tollgate.billing.payments import service as payments
from tollgate.billing.settlements.schemas import UsageCharge
from tollgate.billing.settlements.service import settle_batch

Sessions = async_sessionmaker[AsyncSession]


def usage(event_id: str, org: str, cost: int) -> UsageCharge:
    return UsageCharge(event_id, org, 7, None, "m", cost, "ok")


async def recharge(sessions: Sessions, org: str, amount: int, ref: str) -> None:
    async with sessions.begin() as s:
        await payments.recharge(
            s, org_id=org, key_id=7, amount_micros=amount, payment_ref=ref, method="admin"
        )


async def set_threshold(
    sessions: Sessions, org: str, threshold: int | None, emails: list[str] | None = None
) -> list[str]:
    credits = None if threshold is None else Decimal(threshold) / 1_000_000
    async with sessions.begin() as s:
        body = LowBalanceSet(low_balance_threshold=credits, alert_emails=emails)
        return (await low_balance_service.set_low_balance(s, org, body))[1]


async def settle(sessions: Sessions, batch: list[UsageCharge]) -> list[str]:
    async with sessions.begin() as s:
        return (await settle_batch(s, batch)).alerts


async def low_alerts(sessions: Sessions, org: str) -> list[tuple[str, int, int]]:
    """(alert_id, limit, balance) of the org's low-balance alerts, oldest first."""
    async with sessions() as s:
        rows = await s.execute(
            text(
                "SELECT alert_id, limit_micros, balance_micros FROM alerts"
                " WHERE org_id = :o AND kind = 'low_balance' ORDER BY id"
            ),
            {"o": org},
        )
        return [(r.alert_id, r.limit_micros, r.balance_micros) for r in rows]


async def deliveries(sessions: Sessions, alert_id: str) -> list[tuple[str, str]]:
    async with sessions() as s:
        rows = await s.execute(
            text("SELECT channel, target FROM alert_deliveries WHERE alert_id = :a ORDER BY channel, target"),
            {"a": alert_id},
        )
        return [(r.channel, r.target) for r in rows]


async def entry_at(sessions: Sessions, org: str, version: int) -> tuple[int, int]:
    """(amount, balance_after) of the org's ledger entry with this wallet version."""
    async with sessions() as s:
        row = (
            await s.execute(
                text(
                    "SELECT amount_micros, balance_after FROM ledger_entries"
                    " WHERE org_id = :o AND wallet_version = :v"
                ),
                {"o": org, "v": version},
            )
        ).one()
        return int(row.amount_micros), int(row.balance_after)


async def test_the_batch_that_crosses_fires_once_named_by_its_ledger_entry(sessions: Sessions) -> None:
    org = new_org()
    await recharge(sessions, org, 1_000, f"p-{org}")  # v1
    assert await set_threshold(sessions, org, 500) == []  # 1,000 is not low
    batch = [usage(f"{org}-{i}", org, 200) for i in range(4)]  # 800, 600, 400 (crosses at v4), 200
    fired = await settle(sessions, batch)
    assert fired == [f"low_balance:{org}:wallet-v4:100"]
    assert await entry_at(sessions, org, 4) == (-200, 400)  # the entry that went below 500
    assert await low_alerts(sessions, org) == [(fired[0], 500, 400)]
    assert await settle(sessions, batch) == []  # a redelivery posts nothing, fires nothing
    assert await settle(sessions, [usage(f"{org}-more", org, 100)]) == []  # still low: no new alert
    assert len(await low_alerts(sessions, org)) == 1


async def test_concurrent_batches_fire_once_per_crossing_and_a_recharge_re_arms(sessions: Sessions) -> None:
    org = new_org()
    await recharge(sessions, org, 1_000, f"p1-{org}")
    await set_threshold(sessions, org, 500)
    for round_ in range(2):
        fired = await asyncio.gather(
            *(settle(sessions, [usage(f"{org}-{round_}-{i}", org, 100)]) for i in range(12))
        )
        assert sum(len(f) for f in fired) == 1  # 12 racing batches, one crossing
        # the balance is now 1,000 - 1,200 = -200; recharging 1,700 lifts it to 1,500 >= 500
        await recharge(sessions, org, 1_700, f"p2-{org}-{round_}")
        await settle(sessions, [usage(f"{org}-{round_}-{i}", org, 100) for i in range(12)])  # duplicates
    alerts = await low_alerts(sessions, org)
    assert len(alerts) == 2 and alerts[0][0] != alerts[1][0]
    for alert_id, _, balance in alerts:
        version = int(alert_id.split(":wallet-v")[1].split(":")[0])
        amount, balance_after = await entry_at(sessions, org, version)
        assert (amount, balance_after) == (-100, balance) and balance_after < 500 <= balance_after + 100


async def test_setting_a_threshold_above_the_balance_fires_once(sessions: Sessions) -> None:
    org = new_org()
    await recharge(sessions, org, 300, f"p-{org}")
    first = await set_threshold(sessions, org, 500)
    assert first == [f"low_balance:{org}:wallet-v1:100"]
    assert await set_threshold(sessions, org, 500) == []  # re-saved: already low
    assert await set_threshold(sessions, org, 900) == []  # raised: already low
    assert await set_threshold(sessions, org, 200) == []  # lowered below the balance: re-armed
    assert await settle(sessions, [usage(f"{org}-1", org, 150)]) == [f"low_balance:{org}:wallet-v2:100"]
    assert [a[0] for a in await low_alerts(sessions, org)] == [first[0], f"low_balance:{org}:wallet-v2:100"]


async def test_an_org_without_a_wallet_is_low_at_once(sessions: Sessions) -> None:
    org = new_org()
    assert await set_threshold(sessions, org, 1) == [f"low_balance:{org}:wallet-v0:100"]
    assert await low_alerts(sessions, org) == [(f"low_balance:{org}:wallet-v0:100", 1, 0)]


async def test_alert_emails_default_to_the_monthly_budgets(sessions: Sessions) -> None:
    org, other = new_org(), new_org()
    async with sessions.begin() as s:
        await s.execute(
            text(
                "INSERT INTO budgets (id, org_id, key_id, period, limit_micros, alert_emails)"
                " VALUES (:id, :o, 0, 'monthly', 10, ARRAY['fin@example.com'])"
            ),
            {"id": f"bud_{org}", "o": org},
        )
    (inherited,) = await set_threshold(sessions, org, 5)
    (own,) = await set_threshold(sessions, other, 5, ["ops@example.com"])
    assert await deliveries(sessions, inherited) == [
        ("email", "fin@example.com"),
        ("kafka", "billing.alerts.v1"),
    ]
    assert await deliveries(sessions, own) == [("email", "ops@example.com"), ("kafka", "billing.alerts.v1")]


async def test_a_setting_change_racing_a_crossing_batch_fires_exactly_once(sessions: Sessions) -> None:
    """Either order is fine: the batch crosses a threshold already set, or the threshold is set
    above a balance the batch already lowered; never both, never neither."""
    orgs = [new_org() for _ in range(8)]
    for org in orgs:
        await recharge(sessions, org, 1_000, f"p-{org}")

    async def race(org: str) -> list[str]:
        both = await asyncio.gather(
            set_threshold(sessions, org, 500), settle(sessions, [usage(f"{org}-1", org, 600)])
        )
        return both[0] + both[1]

    fired = await asyncio.gather(*(race(org) for org in orgs))
    assert [len(f) for f in fired] == [1] * len(orgs)
    for org in orgs:
        assert len(await low_alerts(sessions, org)) == 1


async def test_removing_the_setting_stops_alerts(sessions: Sessions) -> None:
    org = new_org()
    await recharge(sessions, org, 1_000, f"p-{org}")
    await set_threshold(sessions, org, 500)
    await set_threshold(sessions, org, None)
    assert await settle(sessions, [usage(f"{org}-1", org, 900)]) == []
    async with sessions() as s:
        view = await low_balance_service.view(s, org)
    assert (view.setting, view.balance_micros, view.below_threshold) == (None, 100, False)


async def test_other_debit_paths_can_fire_through_the_same_rule(sessions: Sessions) -> None:
    """A negative adjustment fires through alert_posted_crossings in its own transaction: the same
    natural key, once (a replay posts nothing and fires nothing), and usage then no longer crosses."""
    org = new_org()
    await recharge(sessions, org, 1_000, f"p-{org}")
    await set_threshold(sessions, org, 500)
    for _ in range(2):  # the second is a replay of the same adjustment: no posting, no alert
        async with sessions.begin() as s:
            result = await refunds.adjust(
                s,
                org_id=org,
                key_id=None,
                amount_micros=-700,
                reason="goodwill reversal",
                adjustment_ref=f"adj-{org}",
                by_key_id=None,
            )
            # adjust already recorded the crossing: asking again finds the alert's natural key taken
            fired = await low_balance_service.alert_posted_crossings(s, {org: [-700]}, {org: result.wallet})
        assert fired == []
        assert [a[0] for a in await low_alerts(sessions, org)] == [f"low_balance:{org}:wallet-v2:100"]
    assert await settle(sessions, [usage(f"{org}-1", org, 100)]) == []
    assert [a[0] for a in await low_alerts(sessions, org)] == [f"low_balance:{org}:wallet-v2:100"]


async def test_a_refund_that_crosses_the_threshold_fires_once(sessions: Sessions) -> None:
    """A refund is a debit too: taking the balance below the threshold alerts, its replay does not."""
    org = new_org()
    await recharge(sessions, org, 1_000, f"p-{org}")
    await set_threshold(sessions, org, 500)
    async with sessions.begin() as s:
        payment_id = (
            await s.execute(text("SELECT id FROM payments WHERE payment_ref = :r"), {"r": f"p-{org}"})
        ).scalar_one()
    for _ in range(2):
        async with sessions.begin() as s:
            await refunds.refund(
                s,
                payment_id=payment_id,
                amount_micros=700,
                refund_ref=f"rf-{org}",
                reason="customer asked",
                by_key_id=None,
            )
        assert [a[0] for a in await low_alerts(sessions, org)] == [f"low_balance:{org}:wallet-v2:100"]
