"""Server-sent events as bytes: a stream cut into events, and the data an event carries."""

from __future__ import annotations


class EventSplitter:
    """Cuts a byte stream into events at blank lines. CRLF is read as LF (sse-starlette ends lines
    with CRLF); what follows the last blank line stays in `rest` until more bytes come."""

    def __init__(self) -> None:
        self.rest = b""

    def feed(self, raw: bytes) -> list[bytes]:
        """The events that `raw` completes, in order."""
        buffer = self.rest + raw
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        events = []
        while (cut := buffer.find(b"\n\n")) >= 0:
            events.append(buffer[:cut])
            buffer = buffer[cut + 2 :]
        self.rest = buffer
        return events


def event_data(event: bytes) -> bytes:
    """An event's `data:` lines, joined; b"" where it has none (a comment, a ping)."""
    return b"\n".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
