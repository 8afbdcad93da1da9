"""The reference model of test_billing_ledger_properties.py and the operations it draws: what the
money model and the alert rules of docs/billing.md promise, computed without any of billing's code."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

MICROS_PER_CENT = 10_000
THRESHOLDS = (50, 80, 100)  # percent of a budget every budget alerts at, plus its own

cents = st.integers(1, 500)
pick = st.integers(0, 50)  # an earlier fact, modulo how many there are
scope = st.sampled_from(["org", "key"])  # the org's monthly budget or its key's


def tenths(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Cents in round steps of 10: round limits and round usage make spend and balance land exactly
    on thresholds (the boundaries: reaching 80 % alerts, landing on the low-balance threshold not)."""
    return st.integers(lo, hi).map(lambda d: d * 10)


def weighted(*choices: tuple[int, st.SearchStrategy[tuple[Any, ...]]]) -> st.SearchStrategy[tuple[Any, ...]]:
    """One of the strategies, each `weight` times as likely (st.one_of would make them equally so)."""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(lambda s: s)


operation = weighted(
    (3, st.tuples(st.just("recharge"), cents)),
    (1, st.tuples(st.just("replay_recharge"), pick)),
    (2, st.tuples(st.just("refund"), pick, st.one_of(st.none(), cents))),  # None: all that is left
    (1, st.tuples(st.just("replay_refund"), pick)),
    (2, st.tuples(st.just("adjust"), st.integers(-300, 300).filter(bool))),
    (1, st.tuples(st.just("replay_adjust"), pick)),
    # cost in micros: round, whole cents or anything
    (4, st.tuples(st.just("usage"), tenths(0, 20).map(lambda c: c * MICROS_PER_CENT))),
    (1, st.tuples(st.just("usage"), st.integers(0, 200).map(lambda c: c * MICROS_PER_CENT))),
    (1, st.tuples(st.just("usage"), st.integers(0, 2_000_000))),
    (1, st.tuples(st.just("redeliver"), pick)),
    # limit in cents, alert_threshold in percent (None: only 50/80/100), hard_limit
    (
        3,
        st.tuples(
            st.just("budget"),
            scope,
            tenths(1, 30) | st.integers(1, 300),
            st.none() | st.integers(1, 100),
            st.booleans(),
        ),
    ),
    (1, st.tuples(st.just("unbudget"), scope, st.booleans())),  # True: DELETE, False: POST null
    # threshold: the balance then plus this many cents (at least 1 cent), so crossings are common
    (3, st.tuples(st.just("low_balance"), tenths(-15, 5) | st.integers(-150, 50))),
    (1, st.tuples(st.just("low_balance"), st.none())),  # cleared
)
# Usually an opening recharge: a low-balance threshold then has a balance above it to fall from.
opening = weighted((3, st.tuples(st.just("recharge"), st.integers(1, 1_000))), (1, st.just(())))
operations = st.builds(
    lambda first, rest: [first, *rest] if first else rest,
    opening,
    st.lists(operation, min_size=6, max_size=20),
)


def month_of(unix_ms: int) -> str:
    return datetime.fromtimestamp(unix_ms / 1000, UTC).strftime("%Y-%m")


@dataclass
class Budget:
    id: str
    limit: int  # micros per month
    pct: int | None  # its own alert_threshold, percent


@dataclass
class Reference:
    """What the money model and the alert rules promise, computed without any of billing's code."""

    org_id: str
    recharges: dict[str, int] = field(default_factory=dict)  # idempotency key -> micros
    refunds: dict[str, int] = field(default_factory=dict)  # refund id -> micros
    refunded: dict[int, int] = field(default_factory=dict)  # payment id -> micros refunded
    adjustments: dict[str, int] = field(default_factory=dict)  # idempotency key -> signed micros
    events: dict[str, int] = field(default_factory=dict)  # event id -> micros
    version: int = 0  # ledger entries so far: the wallet's version
    spent: dict[str, int] = field(default_factory=dict)  # month -> settled usage micros
    budgets: dict[str, Budget] = field(default_factory=dict)  # "org" | "key" -> monthly budget
    low_threshold: int | None = None  # micros
    low: bool = False  # the balance is below low_threshold
    alerts: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # id -> (limit, balance)
    causes: set[str] = field(default_factory=set)  # what fired them, boundaries met (statistics)

    @property
    def balance(self) -> int:
        credits_in = sum(self.recharges.values()) + sum(self.adjustments.values())
        return credits_in - sum(self.refunds.values()) - sum(self.events.values())

    @property
    def usage_entries(self) -> int:
        return sum(1 for cost in self.events.values() if cost > 0)

    def posted(self, kind: str) -> None:
        """One more ledger entry (already counted in the balance): the wallet's version moves on."""
        self.version += 1
        self.watch_balance(kind)

    def watch_balance(self, cause: str) -> None:
        """A low-balance alert each time the balance turns low, named by the wallet version."""
        low = self.low_threshold is not None and self.balance < self.low_threshold
        if self.balance == self.low_threshold:
            self.causes.add("balance exactly on the low-balance threshold")
        if low and not self.low:
            assert self.low_threshold is not None
            alert_id = f"low_balance:{self.org_id}:wallet-v{self.version}:100"
            self.fire(alert_id, self.low_threshold, self.balance, f"low balance by {cause}")
        self.low = low

    def watch_budgets(self, month: str, cause: str) -> None:
        """Each threshold a budget in force has reached in `month` alerts, once per budget id."""
        spent = self.spent.get(month, 0)
        for budget in self.budgets.values():
            for pct in {*THRESHOLDS, *([budget.pct] if budget.pct else [])}:
                if pct * budget.limit <= spent * 100:
                    alert_id = f"budget_threshold:{budget.id}:{month}:{pct}"
                    exactly = ", exactly" if pct * budget.limit == spent * 100 else ""
                    self.fire(alert_id, budget.limit, None, f"budget threshold by {cause}{exactly}")

    def fire(self, alert_id: str, limit: int, balance: int | None, cause: str) -> None:
        if alert_id not in self.alerts:  # the first firing is the one recorded
            self.alerts[alert_id] = (limit, balance)
            self.causes.add(cause)
