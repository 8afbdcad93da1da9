"""SloughGPT's `/ws` real-time events (docs/sloughgpt.md "Real-time events"): Kafka facts become small
JSON events in per-organisation Redis Streams (fanin.py), which every gateway replica reads for the
organisations of its open connections (hub.py) and pushes to them (session.py)."""
