"""What the /ws tests speak with: a websockets client that reads frames until one matches, training
facts published as the training service's outbox relay does, and gateway replicas of the stack."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from google.protobuf.message import Message
from websockets.asyncio.client import ClientConnection, connect

from tollgate.common.kafka import EVENT_TYPE_HEADER, TOPIC_TRAINING, make_admin, make_producer
from tollgate.devstack.config import StackConfig
from tollgate.devstack.procs import wait_http

Frame = dict[str, Any]


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://") + "/ws"


async def open_ws(http_url: str, token: str, *, last_event_id: str = "", **options: Any) -> ClientConnection:
    """Connected, authenticated (the `authenticated` frame read)."""
    ws = await connect(ws_url(http_url), **options)
    auth: Frame = {"type": "auth", "token": token}
    if last_event_id:
        auth["last_event_id"] = last_event_id
    await ws.send(json.dumps(auth))
    frame = await next_frame(ws)
    assert frame["type"] == "authenticated", frame
    return ws


async def subscribe(ws: ClientConnection, channels: Sequence[str]) -> None:
    await ws.send(json.dumps({"type": "subscribe", "channels": list(channels)}))
    frame = await until(ws, lambda f: f["type"] in ("subscribed", "error"))
    assert frame["type"] == "subscribed" and set(channels) <= set(frame["channels"]), frame


async def next_frame(ws: ClientConnection, within_s: float = 30) -> Frame:
    frame: Frame = json.loads(await asyncio.wait_for(ws.recv(), within_s))
    return frame


async def until(
    ws: ClientConnection,
    match: Callable[[Frame], bool],
    *,
    within_s: float = 60,
    seen: list[Frame] | None = None,
) -> Frame:
    """Reads frames (heartbeats skipped) until one matches; the others go to `seen`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        frame = await next_frame(ws, max(deadline - loop.time(), 0.01))
        if frame["type"] == "heartbeat":
            continue
        if match(frame):
            return frame
        if seen is not None:
            seen.append(frame)


async def publish_training(
    config: StackConfig, messages: Sequence[Message], partitions: Sequence[int] | None = None
) -> None:
    """To training.v1 keyed by job id with the message name in `event-type`, as training's outbox
    relay publishes them (the real path is a training job: minutes, not what these tests are about).
    `partitions`: the i-th message goes to that partition instead of its key's."""
    producer = make_producer(config.kafka_bootstrap, "realtime-test")
    await producer.start()
    try:
        for i, message in enumerate(messages):
            key = str(getattr(message, "job_id", "") or getattr(message, "name", ""))
            headers = [(EVENT_TYPE_HEADER, type(message).__name__.encode())]
            await producer.send_and_wait(
                TOPIC_TRAINING,
                message.SerializeToString(),
                key=key.encode(),
                headers=headers,
                partition=None if partitions is None else partitions[i],
            )
    finally:
        await producer.stop()


async def group_assignment(config: StackConfig, group_id: str) -> tuple[str, list[int]]:
    """The consumer group's state as the broker describes it, and how many partitions each member
    holds: ("Stable", [6, 6]) once every member has its share."""
    admin = make_admin(config.kafka_bootstrap, "realtime-test-admin")
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group_id])
        group = response.groups[0]
        state, members = group[2], group[5]
        counts = []
        for member in members:
            raw = member[-1]
            assigned = ConsumerProtocolMemberAssignment.decode(raw).assignment if raw else []
            counts.append(sum(len(partitions) for _, partitions in assigned))
        return state, counts
    finally:
        await admin.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    """Another gateway process on the same stack (same Redis, Kafka, auth, billing)."""

    config: StackConfig
    env: dict[str, str]
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log_path: Path = self.config.logs_dir / f"gateway-ws-replica-{self.port}.log"
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tollgate.gateway.main"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_http(
            f"{self.url}/healthz", name="gateway replica", pid=self.proc.pid, log_path=log_path, timeout=90
        )

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye (a crashed or evicted replica)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=15)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


@contextmanager
def replica(config: StackConfig, **settings: str) -> Iterator[Replica]:
    port = free_port()
    env = {
        **config.service_env("gateway"),
        "GATEWAY_HTTP_PORT": str(port),
        "GATEWAY_METRICS_PORT": str(free_port()),
        "GATEWAY_RUN_MIGRATIONS": "false",
        **settings,
    }
    gateway = Replica(config, env, port)
    try:
        gateway.start()  # one that never got healthy is stopped too
        yield gateway
    finally:
        gateway.stop()
