"""Serves the web console's static files at /console/ (docs/console.md).

The console is plain ES modules, CSS and a vendored chart library inside this package: nothing is
built at install time and nothing is fetched from a CDN at run time. It talks to the same public
routes any client uses (/auth/*, /v1/*, /cost/*, /analytics/*) with the signed-in person's access
token or an API key, so the gateway adds no console-only API and no new authority.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/console"

# Everything the console loads is its own: scripts, styles, images, and API calls to this origin.
# No inline script; chart.js sets canvas sizes through the CSSOM, which style-src does not govern.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        b"form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    # the shell and modules change with each release: revalidate (ETag) instead of caching blindly
    (b"cache-control", b"no-cache"),
)


class _WithSecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount(app: FastAPI) -> None:
    """Adds /console (a redirect) and /console/* (the files); call before the proxy's catch-all."""

    async def to_console() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    app.add_api_route(PREFIX, to_console, methods=["GET", "HEAD"], include_in_schema=False)
    files = StaticFiles(directory=STATIC_DIR, html=True, check_dir=True)
    app.mount(PREFIX, _WithSecurityHeaders(files), name="console")
