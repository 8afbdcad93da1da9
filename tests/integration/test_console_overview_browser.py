"""The console's Overview and Usage pages in a real browser against the real stack: a key makes one
answered and one failing request through the gateway (the upstream simulator answers, then fails
with a 500), and the Overview shows the answered one in its latency percentiles and the failed one
in its "Recent errors" table; the Usage page filters by key and operation. Another organisation's
Overview shows the empty state. Screenshots 50-59 under .local/test-artifacts/console/."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from console_support import PHONE, SETTLE_MS, browser, card_value, http, open_page, shot, sign_in_with_key
from playwright.async_api import Browser, expect

from tollgate.devstack.testing import Account

__all__ = ["browser", "http"]  # fixtures, imported for pytest


async def _poll(probe: Callable[[], Any], what: str) -> Any:
    """Waits for analytics to consume the usage events (eventually consistent, not a timing check)."""
    deadline = time.monotonic() + 60.0
    last = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def _chat(http: httpx.AsyncClient, key: str, model: str) -> httpx.Response:
    return await http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


async def test_overview_shows_latency_and_recent_errors_and_usage_filters_by_key_and_operation(
    browser: Browser, http: httpx.AsyncClient, new_account: Callable[..., Account]
) -> None:
    gateway_url = str(http.base_url).rstrip("/")
    owner, stranger = new_account(credits=1), new_account(credits=1)
    assert (await _chat(http, owner.key, "sim-chat")).status_code == 200
    failed = await _chat(http, owner.key, "sim-chat-error")
    assert failed.status_code >= 500, failed.text
    request_id = failed.headers["x-request-id"]
    bearer = {"Authorization": f"Bearer {owner.key}"}

    async def consumed() -> bool:
        latency = (await http.get("/analytics/latency", headers=bearer)).json()
        errors = (await http.get("/analytics/errors", headers=bearer)).json()
        return latency["count"] == 1 and len(errors["data"]) == 1

    await _poll(consumed, "analytics to consume both usage events")

    # the owner's Overview: one answered request in the percentiles, the failed one in the table
    context, page, watch = await sign_in_with_key(browser, gateway_url, owner.key)
    await expect(card_value(page, "latency-p50")).to_contain_text("ms")
    await expect(page.locator('[data-card="latency-p50"] .sub')).to_contain_text("of 1 answered requests")
    errors = page.locator("#recent-errors")
    await expect(errors).to_contain_text(request_id)
    await expect(errors).to_contain_text("sim-chat-error")
    await expect(errors).to_contain_text("upstream_error")
    await expect(errors.locator("tbody tr")).to_have_count(1)
    await expect(card_value(page, "latency-p99")).to_contain_text("ms")
    watch.check("Overview with an error")
    await shot(page, "50-overview-latency-errors")

    # Usage: by key and operation (the rollup by key), then an operation with no usage
    await open_page(page, watch, "usage", "Usage")
    form = page.locator("main form")
    await form.locator("select[name=group_by]").select_option("model")
    await form.locator("select[name=key_id]").select_option(str(owner.key_id))
    await form.locator("select[name=operation]").select_option("chat")
    await form.get_by_role("button", name="Show").click()
    rows = page.locator("main table tbody tr")
    await expect(rows).to_have_count(2, timeout=SETTLE_MS)  # sim-chat and sim-chat-error
    await expect(page.locator("main p").first).to_contain_text("2 requests")
    watch.check("Usage filtered by key and operation")
    await shot(page, "51-usage-key-operation")
    # and by model: only the answered request's model is left
    await form.locator("select[name=model]").select_option("sim-chat")
    await form.get_by_role("button", name="Show").click()
    await expect(rows).to_have_count(1, timeout=SETTLE_MS)
    await expect(rows.first).to_contain_text("sim-chat")
    await expect(page.locator("main p").first).to_contain_text("1 requests")
    watch.check("Usage filtered by model")
    await form.locator("select[name=model]").select_option("")
    await form.locator("select[name=operation]").select_option("embedding")
    await form.get_by_role("button", name="Show").click()
    await expect(page.locator("main .empty")).to_have_text("No usage in this range for these filters.")
    watch.check("Usage filtered to an unused operation")
    await shot(page, "52-usage-filter-empty")
    await context.close()

    # another organisation: nothing of the owner's; the empty states, on a phone
    context, page, watch = await sign_in_with_key(browser, gateway_url, stranger.key, PHONE)
    await expect(page.locator("main")).to_contain_text("No failed requests.")
    await expect(card_value(page, "latency-p50")).to_have_text("—")
    await expect(page.locator("#recent-errors")).to_have_count(0)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    watch.check("Overview of another organisation")
    await shot(page, "53-overview-empty-phone")
    await context.close()
