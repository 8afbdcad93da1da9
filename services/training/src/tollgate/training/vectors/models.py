"""ORM tables of vector collections. PostgreSQL is the source of truth for every vector and its
metadata; the ANN index (vectors/indexes.py) is derived from these rows and can always be rebuilt.

Each write to a collection takes the next `revision` of the collection (the row lock on the
collection orders writers) and stamps the rows it touches with it as `seq`; a deletion keeps the
row as a tombstone (`deleted`, no vector). An index that has applied every row up to seq N catches
up with `seq > N` alone, whichever replica wrote the rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.training.db import Base


class VectorCollection(Base):
    __tablename__ = "vector_collections"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_vector_collections_org_name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    dimension: Mapped[int] = mapped_column(Integer, nullable=False)
    metric: Mapped[str] = mapped_column(String(16), nullable=False, server_default="cosine")
    revision: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    vector_count: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class VectorPoint(Base):
    __tablename__ = "vector_points"
    __table_args__ = (
        UniqueConstraint("collection_id", "point_id", name="uq_vector_points_collection_point"),
        Index("ix_vector_points_collection_seq", "collection_id", "seq"),
        Index(
            "ix_vector_points_metadata",
            "metadata",
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
        ),
    )

    # the ANN index's key: stable for the point's whole life (an upsert keeps it)
    key: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    collection_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("vector_collections.id", ondelete="CASCADE"), nullable=False
    )
    point_id: Mapped[str] = mapped_column(String(256), nullable=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    # float32 little-endian, `dimension` values; NULL once deleted
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # "metadata" is reserved on declarative classes: the attribute is `payload`
    payload: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
