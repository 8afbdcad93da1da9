"""The catalog learns fine-tuned models from training.v1 (consumer group `gateway-training`):
ModelDeployed adds the model under its `ft:...` name on its base model's upstream (same provider,
URL, key and prices: a fine-tuned model is priced like its base), asking the upstream for the
adapter (`upstream_model`); ModelDeleted removes it. Both are idempotent upserts/deletes by name, so
a redelivered record changes nothing; offsets are committed after the catalog commit, and every
gateway process's snapshot picks the change up (this one reloads at once, the others poll)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from google.protobuf.message import DecodeError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.kafka import (
    EVENT_TYPE_HEADER,
    STOP_STALL_S,
    TOPIC_TRAINING,
    Brokers,
    commit_within,
    make_consumer,
)
from tollgate.common.telemetry import header_value
from tollgate.contracts.v1 import training_pb2
from tollgate.gateway.catalog.repository import ModelRepository
from tollgate.gateway.catalog.snapshot import CatalogSnapshot

log = logging.getLogger(__name__)

GROUP_ID = "gateway-training"
_COPIED = (
    "provider",
    "base_url",
    "api_key_encrypted",
    "price_in_micros",
    "price_out_micros",
    "price_request_micros",
    "price_image_micros",
    "price_embedding_micros",
    "price_cached_in_micros",
    "price_cache_write_micros",
    "price_reasoning_micros",
    "group_id",
    "multiple",
    "max_tokens_default",
)


async def apply_deployed(session: AsyncSession, event: training_pb2.ModelDeployed) -> bool:
    """Adds (or refreshes) the fine-tuned model; False when its base is not in the catalog."""
    repo = ModelRepository(session)
    base = await repo.get_live_by_name(event.base_model)
    if base is None:
        log.error(
            "fine-tuned model's base is not in the catalog",
            extra={"model": event.name, "base": event.base_model},
        )
        return False
    values: dict[str, Any] = {field: getattr(base, field) for field in _COPIED}
    values["upstream_model"] = event.upstream_model
    values["extra_config"] = {
        "fine_tuned": {
            "org_id": event.org_id,
            "base_model": event.base_model,
            "job_id": event.job_id,
            "model_id": event.model_id,
        }
    }
    existing = await repo.get_live_by_name(event.name)
    if existing is None:
        await repo.add(name=event.name, **values)
    else:
        await repo.update(existing, **values)
    return True


async def apply_deleted(session: AsyncSession, event: training_pb2.ModelDeleted) -> bool:
    repo = ModelRepository(session)
    existing = await repo.get_live_by_name(event.name)
    return existing is not None and await repo.soft_delete(existing.id)


class DeploymentConsumer:
    def __init__(
        self,
        factory: Callable[[], AIOKafkaConsumer],
        sessions: async_sessionmaker[AsyncSession],
        snapshot: CatalogSnapshot,
        retry_s: float = 2.0,
    ) -> None:
        self._factory = factory
        self._sessions = sessions
        self._snapshot = snapshot
        self._retry_s = retry_s

    async def apply(self, event_type: str | None, payload: bytes) -> bool:
        """One record in its own transaction; True when the catalog changed."""
        try:
            if event_type == "ModelDeployed":
                async with self._sessions.begin() as session:
                    return await apply_deployed(session, training_pb2.ModelDeployed.FromString(payload))
            if event_type == "ModelDeleted":
                async with self._sessions.begin() as session:
                    return await apply_deleted(session, training_pb2.ModelDeleted.FromString(payload))
        except DecodeError:
            log.error("undecodable %s on %s skipped", event_type, TOPIC_TRAINING)
        return False

    async def run(self) -> None:
        while True:
            consumer = self._factory()
            try:
                await consumer.start()
                while True:
                    batches = await consumer.getmany(timeout_ms=1000, max_records=100)
                    changed = False
                    for records in batches.values():
                        for record in records:
                            if record.value is not None:
                                kind = header_value(record.headers, EVENT_TYPE_HEADER)
                                changed = await self.apply(kind, record.value) or changed
                    if changed:
                        await self._snapshot.reload()
                    if batches:
                        await commit_within(
                            consumer, {tp: recs[-1].offset + 1 for tp, recs in batches.items() if recs}
                        )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("training.v1 consumer failed; retrying", exc_info=True)
            finally:
                try:
                    async with asyncio.timeout(STOP_STALL_S):
                        await consumer.stop()
                except Exception:
                    log.debug("consumer stop failed", exc_info=True)
            await asyncio.sleep(self._retry_s)


def default_factory(brokers: Brokers) -> Callable[[], AIOKafkaConsumer]:
    def make() -> AIOKafkaConsumer:
        return make_consumer(brokers, GROUP_ID, TOPIC_TRAINING, fetch_min_bytes=1, fetch_max_wait_ms=500)

    return make
