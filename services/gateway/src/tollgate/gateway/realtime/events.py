"""Pure parts of /ws: Kafka facts → realtime events, who may see one, and the resume cursor."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.message import DecodeError, Message

from tollgate.common.kafka import TOPIC_BILLING_ALERTS, TOPIC_TRAINING, TOPIC_USAGE
from tollgate.common.money import micros_to_credits
from tollgate.contracts.v1 import events_pb2, training_pb2

TRAINING, COST, USAGE, SYSTEM = "training", "cost", "usage", "system"
CHANNELS = (TRAINING, COST, USAGE)  # what a client may subscribe to; `system` reaches everyone

# (topic, event-type header) → (SloughGPT event type, channel, message class). Seed 001 names a job's
# start and end; `training_progress` (one per step: step, epoch, loss, learning rate, tokens/s) is
# ours, on the same `training` channel, so a follower draws the loss curve as it trains instead of
# polling the events route. Model deletions are not /ws events: skipped before decoding.
_KINDS: dict[tuple[str, str], tuple[str, str, type[Message]]] = {
    (TOPIC_TRAINING, "TrainingStarted"): ("training_started", TRAINING, training_pb2.TrainingStarted),
    (TOPIC_TRAINING, "TrainingProgress"): ("training_progress", TRAINING, training_pb2.TrainingProgress),
    (TOPIC_TRAINING, "TrainingCompleted"): ("training_completed", TRAINING, training_pb2.TrainingCompleted),
    (TOPIC_TRAINING, "ModelDeployed"): ("model_deployed", TRAINING, training_pb2.ModelDeployed),
    (TOPIC_BILLING_ALERTS, "cost_alert"): ("cost_alert", COST, events_pb2.CostAlert),
    (TOPIC_USAGE, "UsageRecorded"): ("usage", USAGE, events_pb2.UsageRecorded),
}
_MICROS_FIELDS = ("cost_micros", "spent_micros", "limit_micros", "balance_micros")
_TS_FIELDS = (
    "started_at_unix_ms",
    "at_unix_ms",
    "finished_at_unix_ms",
    "deployed_at_unix_ms",
    "fired_at_unix_ms",
)
# never shown to a client: internal plumbing of the usage fact
_HIDDEN_FIELDS = ("hold_id", "deployment")


@dataclass(frozen=True)
class RealtimeEvent:
    """What a stream entry holds. `event_id` is the source fact's id (Kafka redelivers: dedupe key);
    key_id / user_id say whose request a usage event was (who may see it)."""

    event_id: str
    type: str
    channel: str
    org_id: str
    data: dict[str, Any]
    ts: int
    key_id: int = 0
    user_id: str = ""

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "event_id": self.event_id,
                "type": self.type,
                "channel": self.channel,
                "org_id": self.org_id,
                "data": self.data,
                "ts": self.ts,
                "key_id": self.key_id,
                "user_id": self.user_id,
            }
        )

    @classmethod
    def decode(cls, raw: bytes | str) -> RealtimeEvent:
        fields = orjson.loads(raw)
        return cls(**fields)

    def message(self, cursor: str) -> bytes:
        """The JSON frame a client gets: `id` is its resume cursor (see Cursor)."""
        return orjson.dumps(
            {
                "id": cursor,
                "event_id": self.event_id,
                "type": self.type,
                "channel": self.channel,
                "org_id": self.org_id,
                "data": self.data,
                "ts": self.ts,
            }
        )


def is_wanted(topic: str, event_type: str | None) -> bool:
    return (topic, event_type or "") in _KINDS


def shape(topic: str, event_type: str | None, value: bytes | None) -> RealtimeEvent | None:
    """The realtime event a Kafka record carries, or None (not a /ws event, undecodable, no org)."""
    kind = _KINDS.get((topic, event_type or ""))
    if kind is None or not value:
        return None
    type_, channel, message_class = kind
    try:
        message = message_class.FromString(value)
    except DecodeError:
        return None
    fields: dict[str, Any] = {f.name: getattr(message, f.name) for f in message.DESCRIPTOR.fields}
    org_id = str(fields.get("org_id", ""))
    event_id = str(fields.get("event_id") or fields.get("alert_id") or "")
    if not org_id or not event_id:
        return None
    data = _public_data(fields)
    ts = next((int(fields[f]) for f in _TS_FIELDS if fields.get(f)), int(time.time() * 1000))
    return RealtimeEvent(
        event_id=event_id,
        type=type_,
        channel=channel,
        org_id=org_id,
        data=data,
        ts=ts,
        key_id=int(fields.get("key_id", 0)),
        user_id=str(fields.get("user_id", "")),
    )


def _public_data(fields: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in fields.items() if k not in _HIDDEN_FIELDS and k not in ("event_id", "org_id")}
    for name in _MICROS_FIELDS:  # credits beside the micros, as the REST routes show money
        if name in data:
            data[name.removesuffix("_micros")] = float(micros_to_credits(int(data[name])))
    return data


def maintenance_event(
    event_id: str, message: str, starts_at: str, ends_at: str, now_ms: int
) -> RealtimeEvent:
    data = {"message": message, "starts_at": starts_at, "ends_at": ends_at}
    return RealtimeEvent(event_id, "system_maintenance", SYSTEM, "", data, now_ms)


@dataclass(frozen=True)
class Viewer:
    """Who a connection speaks for: events of its organisation only; `usage` (per request, with
    models and costs) to the org's owners/admins and platform admins, else only of its own key or
    user."""

    org_id: str
    key_id: int
    user_id: str
    sees_all_usage: bool

    def may_see(self, event: RealtimeEvent) -> bool:
        if event.channel == SYSTEM:
            return True
        if event.org_id != self.org_id:
            return False
        if event.channel != USAGE or self.sees_all_usage:
            return True
        own_key = self.key_id != 0 and event.key_id == self.key_id
        return own_key or (bool(self.user_id) and event.user_id == self.user_id)


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """Redis stream ids ("ms-seq") in their order."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True)
class Cursor:
    """Where a connection stands in its two streams (its organisation's and the broadcast one). Sent
    as every event's `id` ("<org stream id>_<broadcast stream id>"); a client resumes from the last
    one it got. The two streams are separate so a broadcast reaches every organisation with one write."""

    org: str
    broadcast: str

    def __str__(self) -> str:
        return f"{self.org}_{self.broadcast}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Raises ValueError for anything but two stream ids."""
        org, sep, broadcast = text.partition("_")
        if not sep:
            raise ValueError("last_event_id is not an event id this server sent")
        for part in (org, broadcast):
            stream_id_key(part)  # int() raises ValueError on junk
        return cls(org, broadcast)
