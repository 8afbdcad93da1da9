"""Server-sent events: events.py reads and writes them as bytes (used by the providers that translate
an upstream's stream and by the doors); chunk_relay.py is what the doors' relays share (OpenAI chat
chunks in, another dialect's events out, the stream settled once)."""
