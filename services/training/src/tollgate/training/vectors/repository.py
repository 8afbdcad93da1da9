"""Every SQL query of vector collections: collections, point writes (stamped with the collection's
next revision), the index's catch-up reads and the metadata filters."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, cast, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.training.vectors.filters import AnyOf, Condition, Range
from tollgate.training.vectors.models import VectorCollection, VectorPoint

_OPERATORS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}


@dataclass(frozen=True, slots=True)
class PointRow:
    key: int
    point_id: str
    metadata: dict[str, Any]
    vector: bytes | None


@dataclass(frozen=True, slots=True)
class Change:
    """One row the index must apply: a vector to (re)insert, or a tombstone (vector None)."""

    key: int
    vector: bytes | None


def condition_sql(condition: Condition) -> ColumnElement[bool]:
    column = VectorPoint.payload
    if isinstance(condition, AnyOf):
        # jsonb containment: served by the GIN (jsonb_path_ops) index
        return or_(*[column.contains({condition.field: value}) for value in condition.values])
    assert isinstance(condition, Range)
    field = column[condition.field]
    parts: list[ColumnElement[bool]] = [func.jsonb_typeof(field) == condition.kind]
    for operator, value in condition.bounds:
        bound = cast(literal(json.dumps(value)), JSONB)
        parts.append(getattr(field, _OPERATORS[operator])(bound))
    return and_(*parts)


class VectorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---- collections -------------------------------------------------------------------
    async def collection(self, org_id: str, name: str, *, lock: bool = False) -> VectorCollection | None:
        stmt = select(VectorCollection).where(
            VectorCollection.org_id == org_id, VectorCollection.name == name
        )
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def collections(self, org_id: str) -> Sequence[VectorCollection]:
        stmt = (
            select(VectorCollection).where(VectorCollection.org_id == org_id).order_by(VectorCollection.name)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def add_collection(self, collection: VectorCollection) -> bool:
        """False when the organisation already has a collection of that name."""
        stmt = (
            insert(VectorCollection)
            .values(
                id=collection.id,
                org_id=collection.org_id,
                name=collection.name,
                dimension=collection.dimension,
                metric=collection.metric,
                description=collection.description,
            )
            .on_conflict_do_nothing(constraint="uq_vector_collections_org_name")
            .returning(VectorCollection.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def drop_collection(self, collection_id: str) -> None:
        await self.session.execute(delete(VectorCollection).where(VectorCollection.id == collection_id))

    async def next_revision(self, collection_id: str) -> int:
        """Takes the next revision (and the collection's row lock, which orders its writers)."""
        stmt = (
            update(VectorCollection)
            .where(VectorCollection.id == collection_id)
            .values(revision=VectorCollection.revision + 1)
            .returning(VectorCollection.revision)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def add_to_count(self, collection_id: str, delta: int) -> None:
        if delta:
            await self.session.execute(
                update(VectorCollection)
                .where(VectorCollection.id == collection_id)
                .values(vector_count=VectorCollection.vector_count + delta)
            )

    # ---- point writes ------------------------------------------------------------------
    async def live_ids(self, collection_id: str, point_ids: Sequence[str]) -> set[str]:
        stmt = select(VectorPoint.point_id).where(
            VectorPoint.collection_id == collection_id,
            VectorPoint.point_id.in_(point_ids),
            VectorPoint.deleted.is_(False),
        )
        return set((await self.session.execute(stmt)).scalars().all())

    async def upsert(
        self, collection_id: str, seq: int, rows: Sequence[tuple[str, bytes, dict[str, Any]]]
    ) -> None:
        values = [
            {"collection_id": collection_id, "point_id": pid, "seq": seq, "vector": vec, "payload": meta}
            for pid, vec, meta in rows
        ]
        table = VectorPoint.__table__
        stmt = insert(VectorPoint).values(values)
        stmt = stmt.on_conflict_do_update(
            constraint="uq_vector_points_collection_point",
            set_={
                table.c.seq: stmt.excluded.seq,
                table.c.vector: stmt.excluded.vector,
                table.c["metadata"]: stmt.excluded["metadata"],
                table.c.deleted: False,
                table.c.updated_at: func.now(),
            },
        )
        await self.session.execute(stmt)

    async def tombstone(self, collection_id: str, seq: int, point_ids: Sequence[str]) -> int:
        stmt = (
            update(VectorPoint)
            .where(
                VectorPoint.collection_id == collection_id,
                VectorPoint.point_id.in_(point_ids),
                VectorPoint.deleted.is_(False),
            )
            .values(seq=seq, deleted=True, vector=None, payload={}, updated_at=func.now())
            .returning(VectorPoint.key)
        )
        return len((await self.session.execute(stmt)).scalars().all())

    # ---- reads ----------------------------------------------------------------------
    async def revision(self, collection_id: str) -> int | None:
        """The collection's revision; None once it is deleted."""
        stmt = select(VectorCollection.revision).where(VectorCollection.id == collection_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def all_collections(self) -> list[tuple[str, int]]:
        """(id, dimension) of every collection of every organisation (indexes opened at startup)."""
        stmt = select(VectorCollection.id, VectorCollection.dimension).order_by(VectorCollection.created_at)
        return [(cid, dim) for cid, dim in (await self.session.execute(stmt)).all()]

    async def changes(
        self, collection_id: str, after: int, upto: int, page: int = 5000
    ) -> AsyncIterator[list[Change]]:
        """Rows stamped in (after, upto], in pages (an index's catch-up or a full rebuild)."""
        last_key = 0
        while True:
            stmt = (
                select(VectorPoint.key, VectorPoint.vector, VectorPoint.deleted)
                .where(
                    VectorPoint.collection_id == collection_id,
                    VectorPoint.seq > after,
                    VectorPoint.seq <= upto,
                    VectorPoint.key > last_key,
                )
                .order_by(VectorPoint.key)
                .limit(page)
            )
            rows = (await self.session.execute(stmt)).all()
            if not rows:
                return
            yield [Change(key, None if deleted else vector) for key, vector, deleted in rows]
            last_key = rows[-1][0]

    def _matching(self, collection_id: str, conditions: Sequence[Condition]) -> list[ColumnElement[bool]]:
        return [
            VectorPoint.collection_id == collection_id,
            VectorPoint.deleted.is_(False),
            *[condition_sql(c) for c in conditions],
        ]

    async def count_matching(self, collection_id: str, conditions: Sequence[Condition], cap: int) -> int:
        """How many live points meet the filters, counted up to `cap` + 1 (enough to choose a plan)."""
        inner = select(VectorPoint.key).where(*self._matching(collection_id, conditions)).limit(cap + 1)
        return int(
            (await self.session.execute(select(func.count()).select_from(inner.subquery()))).scalar_one()
        )

    async def matching_vectors(
        self, collection_id: str, conditions: Sequence[Condition]
    ) -> list[tuple[int, bytes]]:
        stmt = select(VectorPoint.key, VectorPoint.vector).where(*self._matching(collection_id, conditions))
        return [
            (key, vector) for key, vector in (await self.session.execute(stmt)).all() if vector is not None
        ]

    async def keys_matching(
        self, collection_id: str, keys: Sequence[int], conditions: Sequence[Condition]
    ) -> set[int]:
        """Which ANN candidates meet the filters (post-filtering)."""
        stmt = select(VectorPoint.key).where(
            VectorPoint.key.in_(keys), *self._matching(collection_id, conditions)
        )
        return set((await self.session.execute(stmt)).scalars().all())

    async def points(
        self, collection_id: str, keys: Sequence[int], *, with_vectors: bool
    ) -> dict[int, PointRow]:
        columns = [VectorPoint.key, VectorPoint.point_id, VectorPoint.payload]
        if with_vectors:
            columns.append(VectorPoint.vector)
        stmt = select(*columns).where(
            VectorPoint.collection_id == collection_id,
            VectorPoint.key.in_(keys),
            VectorPoint.deleted.is_(False),
        )
        out: dict[int, PointRow] = {}
        for row in (await self.session.execute(stmt)).all():
            out[row[0]] = PointRow(row[0], row[1], row[2], row[3] if with_vectors else None)
        return out

    async def point(self, collection_id: str, point_id: str) -> VectorPoint | None:
        stmt = select(VectorPoint).where(
            VectorPoint.collection_id == collection_id,
            VectorPoint.point_id == point_id,
            VectorPoint.deleted.is_(False),
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()
