"""Function tools, `tool_choice` and `text.format` of a Responses request in chat's form (pure).

The Responses API flattens a function tool ({type, name, description, parameters, strict}) where
chat nests it under `function`; its named tool choice is {type: function, name} where chat's is
{type: function, function: {name}}; its `text.format` is chat's `response_format`, flattened the same
way. Built-in tools (web search, file search, computer use, code interpreter, MCP...) would need the
gateway to run them and are refused.
"""

from __future__ import annotations

from typing import Any

from tollgate.gateway.responses_door.input_items import invalid, text_field

TOOL_CHOICE_MODES = frozenset({"none", "auto", "required"})


def chat_tools(tools: Any) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """(chat's `tools`, or None where there are none; the tools as the response echoes them)."""
    if tools is None:
        return None, []
    if not isinstance(tools, list):
        raise invalid("tools", "must be an array of tools.")
    chat: list[dict[str, Any]] = []
    echoed: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid(where, "each tool must be an object with a 'type'.")
        kind = tool.get("type")
        if kind != "function":
            raise invalid(
                f"{where}.type",
                f"the tool type '{kind}' is not supported: this gateway runs no built-in tools, "
                "only function tools (which the client runs) are offered to the model.",
            )
        name = text_field(tool, "name", where, empty=False)
        parameters = tool.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise invalid(f"{where}.parameters", "must be a JSON schema object.")
        function: dict[str, Any] = {
            "name": name,
            "parameters": parameters or {"type": "object", "properties": {}},
        }
        description = tool.get("description")
        if description is not None:
            function["description"] = text_field(tool, "description", where)
        strict = tool.get("strict")
        if strict is not None:
            if not isinstance(strict, bool):
                raise invalid(f"{where}.strict", "must be a boolean.")
            function["strict"] = strict  # only when asked: not every upstream knows it
        chat.append({"type": "function", "function": function})
        echoed.append(
            {
                "type": "function",
                "name": name,
                "description": description,
                "parameters": parameters,
                "strict": strict,
            }
        )
    return chat or None, echoed  # some upstreams refuse an empty `tools` array


def chat_tool_choice(choice: Any, tools: list[dict[str, Any]] | None) -> Any:
    if choice is None:
        return None
    names = {t["function"]["name"] for t in tools or []}
    if isinstance(choice, str):
        if choice not in TOOL_CHOICE_MODES:
            raise invalid("tool_choice", "must be 'none', 'auto', 'required' or a function tool choice.")
        if choice == "required" and not names:
            raise invalid("tool_choice", "'required' needs function 'tools'.")
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind != "function":
        raise invalid(
            "tool_choice.type",
            f"'{kind}' is not supported: only 'none', 'auto', 'required' and "
            "{'type': 'function', 'name': ...} are.",
        )
    name = text_field(choice, "name", "tool_choice", empty=False)
    if name not in names:
        raise invalid("tool_choice.name", f"no function tool named '{name}' is in 'tools'.")
    return {"type": "function", "function": {"name": name}}


def chat_response_format(text_format: Any) -> dict[str, Any] | None:
    """`text.format`: plain text is chat's default and is left out."""
    if text_format is None:
        return None
    kind = text_format.get("type") if isinstance(text_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise invalid("text.format.type", "must be 'text', 'json_object' or 'json_schema'.")
    schema = text_format.get("schema")
    if not isinstance(schema, dict):
        raise invalid("text.format.schema", "is required and must be a JSON schema object.")
    json_schema: dict[str, Any] = {"name": text_field(text_format, "name", "text.format", empty=False)}
    description = text_format.get("description")
    if description is not None:
        json_schema["description"] = text_field(text_format, "description", "text.format")
    json_schema["schema"] = schema
    strict = text_format.get("strict")
    if strict is not None:
        if not isinstance(strict, bool):
            raise invalid("text.format.strict", "must be a boolean.")
        json_schema["strict"] = strict
    return {"type": "json_schema", "json_schema": json_schema}
