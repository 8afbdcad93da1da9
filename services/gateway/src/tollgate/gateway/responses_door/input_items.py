"""A Responses request's `instructions` and `input` as an OpenAI chat request's `messages` (pure).

`input` is a string (one user message) or a list of items: messages (role user, system, developer
or assistant; content a string or parts), `function_call` items (an earlier answer's tool calls, sent
back) and `function_call_output` items (their results). Consecutive function calls become one
assistant message with several `tool_calls`, as chat wants them; each output becomes a `tool` message.

What cannot be honoured is refused with InvalidRequest naming the field in OpenAI's form
(`input[1].content[0].image_url`), which OpenAI's envelope carries as `param`.
"""

from __future__ import annotations

from typing import Any

from tollgate.common.errors import InvalidRequest

# `developer` is chat's newer name for `system`; many OpenAI-compatible servers know only `system`
CHAT_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
# items a client sends back from an earlier answer that carry nothing another model can read:
# reasoning is the earlier model's own (often encrypted); it is dropped, as chat has no place for it
DROPPED_ITEMS = frozenset({"reasoning"})
# items that only make sense with state the gateway does not keep, or tools it does not run
STATEFUL_ITEMS = frozenset({"item_reference", "compaction"})


def invalid(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}': {message}", param=param)


def text_field(obj: dict[str, Any], key: str, where: str, *, empty: bool = True) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or (not empty and not value):
        raise invalid(f"{where}.{key}", "is required and must be a string.")
    return value


def chat_messages(instructions: Any, items: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if instructions is not None:
        if not isinstance(instructions, str):
            raise invalid("instructions", "must be a string.")
        if instructions:
            out.append({"role": "system", "content": instructions})
    if isinstance(items, str):
        out.append({"role": "user", "content": items})
        return out
    if not isinstance(items, list) or not items:
        raise invalid("input", "must be a string or a non-empty array of input items.")
    images: list[dict[str, Any]] = []  # from tool outputs: they follow the run of tool messages
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise invalid(where, "each input item must be an object.")
        kind = item.get("type", "message")  # the easy form of a message has no type
        if kind != "function_call_output" and images:
            out.append({"role": "user", "content": images})
            images = []
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            _function_call(out, item, where)
        elif kind == "function_call_output":
            message, more = _function_call_output(item, where)
            out.append(message)
            images.extend(more)
        elif kind in STATEFUL_ITEMS:
            raise invalid(
                f"{where}.type",
                f"'{kind}' items refer to stored state, which this gateway does not keep: "
                "send the whole conversation in 'input'.",
            )
        elif kind not in DROPPED_ITEMS:
            raise invalid(
                f"{where}.type",
                f"the item type '{kind}' is not supported (messages, function_call and "
                "function_call_output are; built-in tools are not run by this gateway).",
            )
    if images:
        out.append({"role": "user", "content": images})
    if not out:
        raise invalid("input", "holds nothing a model can read.")
    return out


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = CHAT_ROLES.get(item.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise invalid(f"{where}.role", "must be one of 'user', 'system', 'developer' or 'assistant'.")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise invalid(f"{where}.content", "must be a string or an array of content parts.")
    parts = [_part(part, f"{where}.content[{j}]", role) for j, part in enumerate(content)]
    if role != "user" or all(p["type"] == "text" for p in parts):
        # only user messages take images in chat; text alone as a string suits every upstream
        if any(p["type"] != "text" for p in parts):
            raise invalid(f"{where}.content", f"a '{item['role']}' message may hold text only.")
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def _part(part: Any, where: str, role: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise invalid(where, "each content part must be an object with a 'type'.")
    kind = part.get("type")
    if kind == "input_text" or (role == "assistant" and kind == "output_text"):
        return {"type": "text", "text": text_field(part, "text", where)}
    if role == "assistant" and kind == "refusal":
        return {"type": "text", "text": text_field(part, "refusal", where)}
    if kind == "input_image":
        return image_part(part, where)
    if kind == "input_file":
        raise invalid(
            where,
            "files are not supported: this gateway neither stores files nor extracts their text; "
            "send the text as an 'input_text' part.",
        )
    raise invalid(f"{where}.type", f"the content type '{kind}' is not supported here.")


def image_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = part.get("image_url")
    if part.get("file_id") is not None or not isinstance(url, str):
        raise invalid(
            f"{where}.image_url", "is required: a data URL or an http(s) URL (file ids are not kept)."
        )
    if not url.startswith(("data:image/", "https://", "http://")):
        raise invalid(f"{where}.image_url", "must be a data:image/... URL or an http(s) URL.")
    image: dict[str, Any] = {"url": url}
    detail = part.get("detail")
    if detail is not None:
        if detail not in ("auto", "low", "high"):
            raise invalid(f"{where}.detail", "must be 'auto', 'low' or 'high'.")
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _function_call(out: list[dict[str, Any]], item: dict[str, Any], where: str) -> None:
    """A call joins the assistant message before it (its text, or calls made in the same turn)."""
    function = {
        "name": text_field(item, "name", where, empty=False),
        "arguments": text_field(item, "arguments", where),
    }
    call = {"id": text_field(item, "call_id", where, empty=False), "type": "function", "function": function}
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        last["content"] = last.get("content") or None
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_call_output(item: dict[str, Any], where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A tool message, and the output's images: chat's tool messages carry text only, so those
    follow as the user's once the run of tool messages ends (chat wants them right after the calls)."""
    call_id = text_field(item, "call_id", where, empty=False)
    output = item.get("output")
    if isinstance(output, str):
        return {"role": "tool", "tool_call_id": call_id, "content": output}, []
    if not isinstance(output, list):
        raise invalid(f"{where}.output", "must be a string or an array of content parts.")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for j, part in enumerate(output):
        converted = _part(part, f"{where}.output[{j}]", "user")
        if converted["type"] == "text":
            texts.append(converted["text"])
        else:
            images.append(converted)
    return {"role": "tool", "tool_call_id": call_id, "content": "".join(texts)}, images
