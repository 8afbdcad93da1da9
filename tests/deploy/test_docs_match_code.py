"""The docs' tables checked against the code they describe (issue 13, item 7): every Kafka topic in
docs/architecture.md exists with the message types, producers' constants and consumer group ids it
names, and every route docs/sloughgpt.md lists is served by the gateway's SloughGPT router."""

from __future__ import annotations

import re
from pathlib import Path

from tollgate.analytics.config import AnalyticsSettings
from tollgate.billing.config import BillingSettings
from tollgate.common.kafka import TOPICS
from tollgate.contracts.v1 import events_pb2, training_pb2
from tollgate.gateway.catalog.deployments import GROUP_ID as GATEWAY_TRAINING_GROUP
from tollgate.gateway.realtime.fanin import GROUP_ID as GATEWAY_REALTIME_GROUP
from tollgate.gateway.sloughgpt_door.routes import build_router

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _table(markdown: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the tables under `heading`, up to the next `## ` heading; header and
    separator rows left out."""
    lines = markdown.split(heading, 1)[1].splitlines()[1:]
    end = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    rows = [line for line in lines[:end] if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_the_topics_table_names_the_topics_messages_and_groups_the_code_uses() -> None:
    rows = _table((DOCS / "architecture.md").read_text(), "## Kafka topics")
    documented = {re.findall(r"`([^`]+)`", row[0])[0]: row for row in rows}
    assert set(documented) == set(TOPICS)
    messages = set(events_pb2.DESCRIPTOR.message_types_by_name) | set(
        training_pb2.DESCRIPTOR.message_types_by_name
    )
    for topic, (_name, _key, value, _producer, consumers) in documented.items():
        named = [m for m in re.findall(r"`([A-Z][A-Za-z]+)`", value)]
        assert named and set(named) <= messages, (topic, named)
        for group in re.findall(r"\(`([a-z-]+)`\)", consumers):
            assert group in {
                BillingSettings().consumer_group,
                AnalyticsSettings().consumer_group,
                AnalyticsSettings().chat_consumer_group,
                GATEWAY_TRAINING_GROUP,
                GATEWAY_REALTIME_GROUP,
            }, (topic, group)


def test_every_sloughgpt_route_the_docs_list_is_served() -> None:
    rows = _table((DOCS / "sloughgpt.md").read_text(), "# SloughGPT's text generation API")
    router = build_router(None)  # type: ignore[arg-type]  # routes only: nothing is called
    served = {(method, route.path) for route in router.routes for method in route.methods}  # type: ignore[attr-defined]
    listed = {(m, p) for row in rows for m, p in re.findall(r"`(GET|POST) (/[^`]*)`", row[0])}
    assert listed and listed <= served, listed - served
