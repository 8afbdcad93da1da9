"""Every route the docs name is served (issue 13, item 7): each `METHOD /path` written in README.md
and docs/*.md is sent, unauthenticated and with an empty JSON body, to the running stack's gateway,
and must reach a handler — whatever it answers (401, 422, 404 for an unknown id…), it must not be
the router's own "no such route" (the gateway's `Unknown route` or a service's `Not Found`) nor a
405. Unauthenticated empty requests write nothing, so the test leaves no trace in the stack."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)")
# served on every process, /metrics on its own metrics port: test_prometheus_scrape.py scrapes it
PER_PROCESS = {"/metrics"}


def expand(path: str) -> list[str]:
    """The concrete paths a documented one stands for: `[?query]` dropped, an optional `[/{id}]`
    segment both left out and put in, `{param}` filled with a placeholder, the query dropped."""
    optional = re.search(r"\[([^\]]*)\]", path)
    if optional:
        head, tail = path[: optional.start()], path[optional.end() :]
        inner = optional.group(1)
        variants = [head + tail] + ([head + inner + tail] if not inner.startswith("?") else [])
        return [p for variant in variants for p in expand(variant)]
    return [re.sub(r"\{[^}]+\}", "doc-route-check", path.split("?", 1)[0])]


def documented_routes() -> list[tuple[str, str, str]]:
    found: dict[tuple[str, str], str] = {}
    for document in DOCUMENTS:
        for method, path in ROUTE.findall(document.read_text()):
            for concrete in expand(path):
                if concrete.split("?")[0] not in PER_PROCESS:
                    found.setdefault((method, concrete), document.name)
    return sorted((method, path, where) for (method, path), where in found.items())


def unrouted(response: httpx.Response) -> bool:
    """The router's own refusal, as opposed to an answer from a handler."""
    if response.status_code == 405:
        return True
    return response.status_code == 404 and (
        "Unknown route:" in response.text or '"Not Found"' in response.text
    )


def send(gateway_url: str, method: str, path: str) -> httpx.Response:
    body = None if method in {"GET", "DELETE"} else {}
    return httpx.request(method, gateway_url + path, json=body, timeout=30.0)


def test_the_docs_name_enough_routes_to_be_worth_checking() -> None:
    assert len(documented_routes()) > 80


def test_the_check_tells_a_missing_route(gateway_url: str) -> None:
    for method, path in [
        ("GET", "/v1/no-such-route"),
        ("POST", "/auth/no-such-route"),
        ("GET", "/cost/no-such-route"),
        ("DELETE", "/auth/login"),
    ]:
        assert unrouted(send(gateway_url, method, path)), (method, path)


@pytest.mark.parametrize(("method", "path", "document"), documented_routes())
def test_a_documented_route_is_served(gateway_url: str, method: str, path: str, document: str) -> None:
    response = send(gateway_url, method, path)
    assert not unrouted(response), f"{document} names {method} {path}: {response.status_code} {response.text}"
