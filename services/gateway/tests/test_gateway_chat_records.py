"""Chat records at the gateway: the streamed answer is assembled only when asked, the event
carries content only for "full" organisations, and a full queue drops (never blocks)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from prometheus_client import CollectorRegistry
from test_gateway_streaming import Chunks, chunk

from tollgate.common.auth_client import Principal
from tollgate.gateway.completions.streaming import SseRelay, StreamOutcome
from tollgate.gateway.records.recorder import (
    ChatRecorder,
    RecordMetrics,
    pending_record,
    text_messages,
    to_event,
)


def principal(mode: str) -> Principal:
    return Principal(
        key_id=5,
        org_id="org_x",
        user_id="usr_x",
        role="user",
        group_id=0,
        permissions=("read", "write"),
        key_prefix="tg_x",
        expires_at_unix=0,
        month_quota_micros=0,
        chat_recording=mode,
        chat_retention_days=14,
    )


def record(mode: str, **kw: Any) -> Any:
    fields: dict[str, Any] = {
        "request_id": "req_1",
        "principal": principal(mode),
        "session_id": "s" * 300,
        "thread_id": "",
        "model": "m",
        "stream": True,
        "status": "ok",
        "tokens_in": 3,
        "tokens_out": 2,
        "messages": [{"role": "user", "content": "hi"}],
        "answer": "hello there",
        "endpoint": "/v1/chat/completions",
    }
    fields.update(kw)
    return pending_record(**fields)


async def test_the_relay_assembles_the_answer_only_when_collecting() -> None:
    for collect, expected in ((True, "Hello world"), (False, "")):
        outcomes: list[StreamOutcome] = []
        stream = Chunks([chunk("Hello"), chunk(" world"), b"data: [DONE]\n\n"])
        relay = SseRelay(
            httpx.Response(200, stream=stream), "public", False, lambda: 1, outcomes.append, collect
        )
        _ = [part async for part in relay.events()]
        assert outcomes[0].text == expected and outcomes[0].content_chunks == 2


def test_full_records_carry_content_metadata_records_none() -> None:
    full = to_event(record("full"))
    assert full.mode == "full" and full.answer == "hello there" and full.retention_days == 14
    assert orjson.loads(full.messages_json) == [{"role": "user", "content": "hi"}]
    assert len(full.session_id) == 128 and full.org_id == "org_x" and full.key_id == 5
    meta = to_event(record("metadata"))
    assert meta.mode == "metadata" and meta.answer == "" and meta.messages_json == ""
    assert meta.tokens_in == 3 and meta.tokens_out == 2


def test_text_messages_keep_text_and_mark_other_parts() -> None:
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {}}],
        },
        {"role": "assistant", "content": None},
        "junk",
    ]
    assert text_messages(messages) == [
        {"role": "user", "content": "look\n[image_url]"},
        {"role": "assistant", "content": ""},
    ]


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.got_one = asyncio.Event()

    async def start(self) -> None:
        return None

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any) -> asyncio.Future[None]:
        self.sent.append((topic, value, key))
        self.got_one.set()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def flush(self) -> None:
        return None

    async def stop(self) -> None:
        return None


async def test_the_recorder_sends_keyed_by_org_and_drops_when_full() -> None:
    registry = CollectorRegistry()
    producer = FakeProducer()
    recorder = ChatRecorder(lambda: producer, RecordMetrics(registry), max_queued=1)
    recorder.record(record("full"))
    recorder.record(record("full", request_id="req_2"))  # the queue holds one: dropped, counted
    assert registry.get_sample_value("gateway_chat_records_dropped_total", {"reason": "queue_full"}) == 1
    task = asyncio.create_task(recorder.run())
    await asyncio.wait_for(producer.got_one.wait(), 5)
    task.cancel()
    await recorder.close()
    topic, _, key = producer.sent[0]
    assert topic == "chat.records.v1" and key == b"org_x"
