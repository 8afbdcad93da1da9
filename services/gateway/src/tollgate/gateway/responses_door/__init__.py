"""A door in for OpenAI's Responses API (`client.responses.create`): requests are translated to
OpenAI chat requests and run through the operations pipeline; answers and streams are translated
back. No response is stored: what needs stored state is refused (request.py says which).

input_items.py (`instructions` and `input` as chat messages; pure), tools.py (function tools,
tool_choice, text.format; pure), request.py (the body's fields), answer.py (the response object;
pure), stream.py (the SSE translator), routes.py (thin).
"""
