"""Wallets (cached balance per organisation) and the append-only ledger they are derived from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.billing.db import Base

# bonus: a credit package's bonus credits, posted next to its recharge entry (same ref)
LEDGER_KINDS = ("recharge", "usage", "refund", "adjustment", "bonus")


class Wallet(Base):
    __tablename__ = "wallets"

    org_id: Mapped[str] = mapped_column(Text, primary_key=True)
    balance_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    # Bumped once per ledger entry: orders cache refreshes so Redis never goes back in time.
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        # Unique for every kind but usage (migration 0007): a usage entry is made exactly once by its
        # usage_settlements row, and a global index on random event ids costs every settlement a
        # page far beyond memory once the ledger is large. Lookups must say `kind <> 'usage'`.
        Index(
            "uq_ledger_entries_kind_ref_not_usage",
            "kind",
            "ref",
            unique=True,
            postgresql_where=text("kind <> 'usage'"),
        ),
        CheckConstraint(
            "kind IN ('recharge', 'usage', 'refund', 'adjustment', 'bonus')", name="ck_ledger_entries_kind"
        ),
        Index("ix_ledger_entries_org_id_id", "org_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(Text, nullable=False)
    amount_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    ref: Mapped[str] = mapped_column(Text, nullable=False)
    key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    balance_after: Mapped[int] = mapped_column(BigInteger, nullable=False)
    wallet_version: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
