"""A door in for Anthropic's Messages API (`anthropic` SDKs): requests are translated to OpenAI
chat requests and run through the operations pipeline; answers and streams are translated back.

request.py (the body's fields), translate.py (content blocks, tools, stop reasons, usage; pure),
answer.py (the message object; pure), stream.py (the SSE translator), routes.py (thin).
"""
