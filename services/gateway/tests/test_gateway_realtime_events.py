"""/ws's pure parts (realtime/events.py, fanin.select): Kafka facts → events, who sees what, cursors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tollgate.common.kafka import EVENT_TYPE_HEADER, TOPIC_BILLING_ALERTS, TOPIC_TRAINING, TOPIC_USAGE
from tollgate.contracts.v1 import events_pb2, training_pb2
from tollgate.gateway.realtime.events import Cursor, RealtimeEvent, Viewer, maintenance_event, shape
from tollgate.gateway.realtime.fanin import RealtimeFanIn, UsageWatch, select


def usage(org: str = "org_a", key_id: int = 7, user_id: str = "u1") -> events_pb2.UsageRecorded:
    return events_pb2.UsageRecorded(
        event_id="req_1",
        org_id=org,
        key_id=key_id,
        user_id=user_id,
        model="sim-chat",
        tokens_in=3,
        tokens_out=4,
        cost_micros=2_500,
        hold_id="hold_secret",
        finished_at_unix_ms=1_700_000_000_123,
    )


def test_training_facts_become_seed_001_event_types() -> None:
    started = training_pb2.TrainingStarted(event_id="e1", job_id="ftjob_1", org_id="org_a", total_steps=10)
    completed = training_pb2.TrainingCompleted(
        event_id="e2", job_id="ftjob_1", org_id="org_a", status="succeeded", cost_micros=1_000_000
    )
    deployed = training_pb2.ModelDeployed(event_id="e3", name="ft:m:org_a:x:ftjob_1", org_id="org_a")
    got = [
        shape(TOPIC_TRAINING, "TrainingStarted", started.SerializeToString()),
        shape(TOPIC_TRAINING, "TrainingCompleted", completed.SerializeToString()),
        shape(TOPIC_TRAINING, "ModelDeployed", deployed.SerializeToString()),
    ]
    assert [(e.type, e.channel, e.event_id, e.org_id) for e in got if e] == [
        ("training_started", "training", "e1", "org_a"),
        ("training_completed", "training", "e2", "org_a"),
        ("model_deployed", "training", "e3", "org_a"),
    ]
    assert got[0] and got[0].data["job_id"] == "ftjob_1" and got[0].data["total_steps"] == 10
    assert got[1] and got[1].data["cost"] == 1.0 and got[1].data["cost_micros"] == 1_000_000
    assert got[2] and got[2].data["name"] == "ft:m:org_a:x:ftjob_1"


def test_a_training_step_becomes_a_training_progress_event_at_its_own_time() -> None:
    fields = {"step": 3, "total_steps": 10, "epoch": 1, "loss": 1.25, "learning_rate": 1e-4}
    step = training_pb2.TrainingProgress(
        event_id="e4",
        job_id="ftjob_1",
        org_id="org_a",
        trained_tokens=3072,
        at_unix_ms=1_700_000_000_123,
        **fields,
    )
    event = shape(TOPIC_TRAINING, "TrainingProgress", step.SerializeToString())
    assert event is not None and (event.type, event.channel, event.event_id, event.org_id) == (
        "training_progress",
        "training",
        "e4",
        "org_a",
    )
    assert event.ts == 1_700_000_000_123
    assert {k: event.data[k] for k in ("job_id", "step", "total_steps", "loss", "trained_tokens")} == {
        "job_id": "ftjob_1",
        "step": 3,
        "total_steps": 10,
        "loss": 1.25,
        "trained_tokens": 3072,
    }


def test_cost_alerts_and_usage_keep_their_ids_and_hide_internal_fields() -> None:
    alert = events_pb2.CostAlert(
        alert_id="low_balance:org_a:1", org_id="org_a", kind="low_balance", balance_micros=500_000
    )
    cost = shape(TOPIC_BILLING_ALERTS, "cost_alert", alert.SerializeToString())
    assert cost is not None and (cost.type, cost.channel, cost.event_id) == (
        "cost_alert",
        "cost",
        alert.alert_id,
    )
    assert cost.data["balance"] == 0.5 and cost.data["kind"] == "low_balance"
    used = shape(TOPIC_USAGE, "UsageRecorded", usage().SerializeToString())
    assert used is not None and (used.type, used.channel, used.key_id, used.user_id) == (
        "usage",
        "usage",
        7,
        "u1",
    )
    assert used.ts == 1_700_000_000_123 and used.data["cost"] == 0.0025 and used.data["tokens_out"] == 4
    assert "hold_id" not in used.data and "org_id" not in used.data


@pytest.mark.parametrize(
    ("topic", "kind", "value"),
    [
        (
            TOPIC_TRAINING,
            "TrainingProgress",
            training_pb2.TrainingProgress(event_id="p", step=1).SerializeToString(),  # no org
        ),
        (TOPIC_TRAINING, "ModelDeleted", b""),
        (TOPIC_TRAINING, None, b"x"),
        (TOPIC_USAGE, "UsageRecorded", b"\xff\xff\xff"),  # undecodable
        (TOPIC_USAGE, "UsageRecorded", events_pb2.UsageRecorded(event_id="e").SerializeToString()),  # no org
    ],
)
def test_other_records_are_no_events(topic: str, kind: str | None, value: bytes) -> None:
    assert shape(topic, kind, value) is None


def test_an_event_survives_its_stream_encoding() -> None:
    event = shape(TOPIC_USAGE, "UsageRecorded", usage().SerializeToString())
    assert event is not None and RealtimeEvent.decode(event.encode()) == event


def test_viewers_see_their_org_only_and_usage_by_role() -> None:
    mine, theirs = (
        shape(TOPIC_USAGE, "UsageRecorded", usage(org).SerializeToString()) for org in ("org_a", "org_b")
    )
    other_key = shape(TOPIC_USAGE, "UsageRecorded", usage(key_id=8, user_id="u2").SerializeToString())
    alert = shape(
        TOPIC_BILLING_ALERTS,
        "cost_alert",
        events_pb2.CostAlert(alert_id="a", org_id="org_a").SerializeToString(),
    )
    assert mine and theirs and other_key and alert
    admin = Viewer("org_a", 1, "boss", sees_all_usage=True)
    member = Viewer("org_a", 7, "u1", sees_all_usage=False)
    signed_in = Viewer("org_a", 0, "u2", sees_all_usage=False)  # a session token: key id 0
    assert [admin.may_see(e) for e in (mine, theirs, other_key, alert)] == [True, False, True, True]
    assert [member.may_see(e) for e in (mine, theirs, other_key, alert)] == [True, False, False, True]
    assert [signed_in.may_see(e) for e in (mine, other_key)] == [False, True]
    notice = maintenance_event("m1", "upgrade", "", "", 1)
    assert Viewer("org_z", 1, "", False).may_see(notice)


def test_cursors_round_trip_and_refuse_junk() -> None:
    cursor = Cursor("1700000000000-3", "0-0")
    assert Cursor.parse(str(cursor)) == cursor
    for junk in ("", "abc", "1-0", "x_y", "1-0_zz"):
        with pytest.raises(ValueError):
            Cursor.parse(junk)


@dataclass
class Record:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    offset: int = 0


def test_usage_of_unwatched_orgs_is_skipped_before_decoding() -> None:
    def rec(topic: str, org: str, kind: str, value: bytes) -> Record:
        return Record(topic, org.encode(), value, [(EVENT_TYPE_HEADER, kind.encode())])

    records = [
        rec(TOPIC_USAGE, "org_a", "UsageRecorded", usage("org_a").SerializeToString()),
        rec(TOPIC_USAGE, "org_b", "UsageRecorded", b"\xff not even decoded"),
        rec(TOPIC_TRAINING, "ftjob_1", "TrainingProgress", b"skipped by kind"),
        rec(
            TOPIC_BILLING_ALERTS,
            "org_b",
            "cost_alert",
            events_pb2.CostAlert(alert_id="a", org_id="org_b").SerializeToString(),
        ),
    ]
    assert [(e.type, e.org_id) for e in select(records, {"org_a"})] == [
        ("usage", "org_a"),
        ("cost_alert", "org_b"),
    ]
    assert [e.type for e in select(records, set())] == ["cost_alert"]


class FlakyWatchStore:
    """usage_watched answers, then fails as Redis does while it restarts."""

    def __init__(self) -> None:
        self.answers: list[set[str] | Exception] = [{"org_a"}, RedisConnectionError("closed"), {"org_b"}]

    async def usage_watched(self) -> set[str]:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_the_usage_watch_keeps_the_last_set_while_redis_is_away() -> None:
    """A failed refresh must not end the fan-in (an error there once stopped the whole gateway)."""
    now = [0.0]
    watch = UsageWatch(FlakyWatchStore(), refresh_s=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert await watch.orgs() == {"org_a"}
    now[0] = 1.0
    assert await watch.orgs() == {"org_a"}  # Redis down: the last set known
    now[0] = 2.0
    assert await watch.orgs() == {"org_b"}


@dataclass
class PinningConsumer:
    """What _pin_new_partitions asks of the consumer: its assignment, committed offsets, positions."""

    assigned: set[str]
    committed_at: dict[str, int]
    positions: dict[str, int]
    commits: list[dict[str, int]] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def assignment(self) -> set[str]:
        return set(self.assigned)

    async def committed(self, tp: str) -> int | None:
        self.asked.append(tp)
        return self.committed_at.get(tp)

    async def position(self, tp: str) -> int:
        return self.positions[tp]

    async def commit(self, offsets: dict[str, int]) -> None:
        self.commits.append(offsets)


async def test_a_partition_the_group_never_committed_is_pinned_where_this_replica_starts() -> None:
    """Its "latest" start is committed when it is assigned, so the next owner after a crash starts
    there and not at its own "latest" (which would skip what was published in between)."""
    consumer = PinningConsumer({"t-0", "t-1"}, committed_at={"t-1": 5}, positions={"t-0": 42, "t-1": 5})
    fanin = RealtimeFanIn(lambda: consumer, None, None, None)  # type: ignore[arg-type]
    await fanin._pin_new_partitions()
    assert consumer.commits == [{"t-0": 42}]
    await fanin._pin_new_partitions()  # the same assignment: nothing asked again
    assert consumer.commits == [{"t-0": 42}] and sorted(consumer.asked) == ["t-0", "t-1"]
    consumer.assigned = {"t-1", "t-2"}  # a rebalance: only the new partition is looked at
    consumer.positions["t-2"] = 7
    await fanin._pin_new_partitions()
    assert consumer.commits == [{"t-0": 42}, {"t-2": 7}] and consumer.asked[-1] == "t-2"
