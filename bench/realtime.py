"""CPU per usage.v1 record of the gateway's /ws fan-in (realtime/fanin.py), in process: a record of an
organisation nobody watches (skipped by its key) and one that is watched (decoded, shaped, appended
to a real Redis stream with its dedupe mark, one pipeline per batch as the consumer does).

    uv run --frozen python bench/realtime.py --redis redis://127.0.0.1:26999/0
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass, field

from redis.asyncio import Redis

from tollgate.common.kafka import EVENT_TYPE_HEADER, TOPIC_USAGE
from tollgate.devstack.usage_events import usage_event
from tollgate.gateway.realtime.fanin import select
from tollgate.gateway.realtime.store import EventStore


@dataclass
class Record:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    offset: int = 0


def records(org: str, n: int) -> list[Record]:
    headers = [(EVENT_TYPE_HEADER, b"UsageRecorded")]
    return [
        Record(TOPIC_USAGE, org.encode(), usage_event(org, 7, 1234).SerializeToString(), headers)
        for _ in range(n)
    ]


async def main(redis_url: str, n: int, batch: int) -> None:
    redis = Redis.from_url(redis_url)
    store = EventStore(redis, max_len=10_000, retention_s=600, dedupe_ttl_s=600)
    org = f"bench_{uuid.uuid4().hex[:8]}"
    batches = [records(org, batch) for _ in range(n // batch)]
    started = time.process_time()
    for recs in batches:
        select(recs, set())
    skipped_us = (time.process_time() - started) / n * 1e6
    started = time.process_time()
    for recs in batches:
        await store.append(select(recs, {org}))
    watched_us = (time.process_time() - started) / n * 1e6
    await redis.delete(f"realtime:{{{org}}}:events")
    await redis.aclose()
    print(
        f"unwatched org: {skipped_us:.2f} us CPU/record; "
        f"watched org: {watched_us:.1f} us CPU/record (batch {batch})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:26999/0")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.redis, args.records, args.batch))
