"""The Bedrock-style gateway's `type: doc` content parts: checked and normalised once at parse time,
then passed natively by providers that take documents (bedrock-converse, anthropic) or extracted to
text for those that take none (openai-compatible).

A caller's part: `{"type": "doc", "doc": {"name", "format", "size", "source": {"bytes": B}}}` where B
is an object of index → byte (a JS Uint8Array serialised), a list of ints, or a base64 string.
After `normalise_parts` it is `{"type": "doc", "doc": {"name", "format", "source": {"bytes":
<base64>}}}` and the payload carries DOCS_MARK, so a provider knows to look without every request
paying for a scan of its content parts (parse.messages already walks the messages once).
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from tollgate.common.errors import InvalidRequest

DOCS_MARK = "_tollgate_docs"  # set on a payload whose messages hold doc parts; providers pop it
MAX_DOC_BYTES = 4_500_000  # Bedrock's limit per document
TEXT_FORMATS = frozenset({"txt", "md", "csv", "html"})
BINARY_FORMATS = frozenset({"pdf", "doc", "docx", "xls", "xlsx"})
FORMATS = TEXT_FORMATS | BINARY_FORMATS
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "txt": "text/plain",
    "md": "text/plain",
    "csv": "text/plain",
    "html": "text/plain",
}


def normalise_parts(message: dict[str, Any], i: int) -> bool:
    """Checks and normalises the doc parts of one message's list content; True if it has any."""
    content = message.get("content")
    found = False
    for j, part in enumerate(content):  # type: ignore[union-attr]  # only called for list content
        if type(part) is dict and part.get("type") == "doc":
            content[j] = normalised(part, f"messages[{i}].content[{j}]")  # type: ignore[index]
            found = True
    return found


def _bytes_of(raw: Any, where: str) -> bytes:
    try:
        if isinstance(raw, str):
            return base64.b64decode(raw, validate=True)
        if isinstance(raw, list):
            return bytes(raw)
        if isinstance(raw, dict):
            return bytes(raw[str(k)] for k in range(len(raw)))
    except (binascii.Error, ValueError, TypeError, KeyError):
        pass
    raise InvalidRequest(
        "'doc.source.bytes' must be base64, a list of bytes, or an object of index → byte.",
        param=f"{where}.doc.source.bytes",
    )


def normalised(part: dict[str, Any], where: str) -> dict[str, Any]:
    doc = part.get("doc")
    if not isinstance(doc, dict):
        raise InvalidRequest("A doc part needs a 'doc' object.", param=where)
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("'doc.name' must be a non-empty string.", param=f"{where}.doc.name")
    fmt = doc.get("format")
    fmt = fmt.lower().lstrip(".") if isinstance(fmt, str) else fmt
    if fmt not in FORMATS:
        raise InvalidRequest(
            f"'doc.format' must be one of {', '.join(sorted(FORMATS))}.", param=f"{where}.doc.format"
        )
    source = doc.get("source")
    data = _bytes_of(source.get("bytes") if isinstance(source, dict) else None, where)
    if not data:
        raise InvalidRequest("The document is empty.", param=f"{where}.doc.source.bytes")
    if len(data) > MAX_DOC_BYTES:
        raise InvalidRequest(
            f"The document is larger than {MAX_DOC_BYTES} bytes.", param=f"{where}.doc.source.bytes"
        )
    size = doc.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size != len(data):
        raise InvalidRequest(
            f"'doc.size' is {size} but the document has {len(data)} bytes.", param=f"{where}.doc.size"
        )
    if fmt == "pdf":
        _pdf_reader(data, where)
    elif fmt in TEXT_FORMATS:
        _text(data, where)
    return {
        "type": "doc",
        "doc": {"name": name.strip(), "format": fmt, "source": {"bytes": base64.b64encode(data).decode()}},
    }


def _pdf_reader(data: bytes, where: str) -> Any:
    from pypdf import PdfReader  # imported on first use: requests without PDFs never load it
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        _ = len(reader.pages)
    except (PyPdfError, ValueError, OSError, KeyError, TypeError) as exc:
        raise InvalidRequest(f"The PDF cannot be read ({exc}).", param=f"{where}.doc.source.bytes") from None
    return reader


def _text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The document is not UTF-8 text.", param=f"{where}.doc.source.bytes") from None


def doc_bytes(part: dict[str, Any]) -> bytes:
    return base64.b64decode(part["doc"]["source"]["bytes"])


def extracted_text(part: dict[str, Any], where: str) -> str:
    """A normalised doc part as the text part openai-compatible upstreams get."""
    doc = part["doc"]
    data = doc_bytes(part)
    if doc["format"] == "pdf":
        reader = _pdf_reader(data, where)
        text = "\n".join((page.extract_text() or "") for page in reader.pages).strip()
    elif doc["format"] in TEXT_FORMATS:
        text = _text(data, where)
    else:
        raise InvalidRequest(
            f"This model's provider cannot read {doc['format']} documents; send pdf, txt, md, csv or html.",
            param=f"{where}.doc.format",
        )
    return f'Document "{doc["name"]}" ({doc["format"]}):\n{text}'


def docs_as_text(messages: list[Any]) -> list[Any]:
    """The messages with every doc part replaced by a text part (new lists: the caller's stay)."""
    out = []
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(type(p) is dict and p.get("type") == "doc" for p in content):
            parts = [
                {"type": "text", "text": extracted_text(p, f"messages[{i}].content[{j}]")}
                if type(p) is dict and p.get("type") == "doc"
                else p
                for j, p in enumerate(content)
            ]
            message = {**message, "content": parts}
        out.append(message)
    return out
