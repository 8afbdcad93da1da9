"""The Bedrock-style gateway's `type: doc` content parts in /v1/chat/completions: extracted to text for an
openai-compatible upstream, passed natively to anthropic and bedrock-converse, bad docs → 400
naming the part with nothing held."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from gateway_fakes import Harness

USER = {"authorization": "Bearer user-key"}
NOTES = "alpha beta gamma"


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` (offsets computed, so pypdf reads it without repair)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def doc_part(
    data: bytes, fmt: str, name: str = "notes", encoding: str = "object", **extra: Any
) -> dict[str, Any]:
    if encoding == "object":  # as a JS Uint8Array serialises
        raw: Any = {str(i): b for i, b in enumerate(data)}
    elif encoding == "list":
        raw = list(data)
    else:
        raw = base64.b64encode(data).decode()
    return {
        "type": "doc",
        "doc": {"name": name, "format": fmt, "size": len(data), "source": {"bytes": raw}, **extra},
    }


def chat(model: str, part: dict[str, Any]) -> dict[str, Any]:
    content = [{"type": "text", "text": "summarise this"}, part]
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 4}


@pytest.mark.parametrize("encoding", ["object", "list", "base64"])
async def test_a_text_doc_is_extracted_for_openai_compatible_upstreams(
    harness: Harness, encoding: str
) -> None:
    body = chat("gpt-sim", doc_part(NOTES.encode(), "txt", encoding=encoding))
    r = await harness.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 200, r.text
    # the simulator counts words of text parts: 2 + 'Document "notes" (txt):' (3) + 3
    assert r.json()["usage"]["prompt_tokens"] == 2 + 3 + 3
    [event] = harness.emitter.decoded()
    assert event.cost_micros == 8 * 2 + 4 * 6


async def test_a_pdf_doc_is_extracted_with_pypdf(harness: Harness) -> None:
    body = chat("gpt-sim", doc_part(minimal_pdf("Hello PDF world"), "pdf", encoding="base64"))
    r = await harness.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == 2 + 3 + 3


@pytest.mark.parametrize(
    ("model", "fmt", "data"),
    [
        ("claude-sim", "pdf", minimal_pdf("Hi")),
        ("claude-sim", "md", b"# notes"),
        ("bedrock-sim", "pdf", minimal_pdf("Hi")),
        ("bedrock-sim", "docx", b"PK\x03\x04 not really a docx"),
    ],
)
async def test_native_providers_get_document_blocks(
    harness: Harness, model: str, fmt: str, data: bytes
) -> None:
    r = await harness.client.post("/v1/chat/completions", json=chat(model, doc_part(data, fmt)), headers=USER)
    assert r.status_code == 200, r.text
    # the simulators count 32 tokens a document block (Bedrock's also counts its name's words)
    assert r.json()["usage"]["prompt_tokens"] == 2 + 32 + (1 if model == "bedrock-sim" else 0)


async def test_a_docx_for_an_openai_compatible_upstream_is_refused(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/chat/completions", json=chat("gpt-sim", doc_part(b"PK..", "docx")), headers=USER
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages[0].content[1].doc.format"
    assert harness.billing.reserves == []


@pytest.mark.parametrize(
    ("part", "param"),
    [
        (doc_part(b"x", "exe"), "messages[0].content[1].doc.format"),
        (
            {**doc_part(b"x", "txt"), "doc": {"name": "n", "format": "txt", "source": {"bytes": "%%%"}}},
            "messages[0].content[1].doc.source.bytes",
        ),
        (doc_part(b"abc", "txt", size=99), "messages[0].content[1].doc.size"),
        (doc_part(b"%PDF-1.4 garbage", "pdf"), "messages[0].content[1].doc.source.bytes"),
        (doc_part(b"\xff\xfe\xfa", "txt"), "messages[0].content[1].doc.source.bytes"),
        (doc_part(b"x" * 4_500_001, "txt", encoding="base64"), "messages[0].content[1].doc.source.bytes"),
        ({"type": "doc"}, "messages[0].content[1]"),
    ],
)
@pytest.mark.parametrize("model", ["gpt-sim", "claude-sim", "bedrock-sim"])
async def test_bad_docs_are_400_with_nothing_held(
    harness: Harness, model: str, part: dict[str, Any], param: str
) -> None:
    r = await harness.client.post("/v1/chat/completions", json=chat(model, part), headers=USER)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert harness.billing.reserves == [] and harness.sim.state.stats.by_model == {}
