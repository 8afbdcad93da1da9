"""What every browser test of the console shares: Debian's Chromium under Playwright, a watch on
each page's console errors, screenshots kept as test artifacts, and the helpers a person's steps use
(open a page from the navigation, sign in with a key, pay as the test payment provider would)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Locator,
    Page,
    async_playwright,
    expect,
)

from tollgate.devstack.config import StackConfig

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TOLLGATE_ARTIFACTS_DIR", ROOT / ".local" / "test-artifacts")) / "console"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SETTLE_MS = 30_000  # billing settles from Kafka; the console waits for it, and so may we


class ConsoleWatch:
    """Errors the page logged (console.error, failed loads) and uncaught exceptions, per page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _page_error(self, error: Error) -> None:
        self.errors.append(f"exception: {error}")

    def check(self, where: str) -> None:
        errors, self.errors = self.errors, []
        assert not errors, f"console errors on {where}: {errors}"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is missing: make setup installs it (scripts/provision-system.sh)"
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def http(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        yield client


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def open_page(page: Page, watch: ConsoleWatch, page_id: str, title: str) -> None:
    """Goes to a page by its navigation link, as a person would, and waits for it to load."""
    await page.locator(f'nav a[data-page="{page_id}"]').click()
    await expect(page.locator("main h1")).to_have_text(title)
    await expect(page.locator("main .loading")).to_have_count(0, timeout=SETTLE_MS)
    watch.check(title)


def session_token(stored: str | None) -> str:
    assert stored, "the console kept no session"
    return str(json.loads(stored)["access"])


def signed_webhook(
    config: StackConfig, provider_payment_id: str, amount_micros: int
) -> tuple[bytes, dict[str, str]]:
    """The test provider's `payment.succeeded`, signed as docs/billing.md describes (HMAC-SHA256 over
    f"{t}.{body}" with the secret the stack gave billing)."""
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "payment.succeeded",
        "data": {"payment_id": provider_payment_id, "amount_micros": amount_micros},
    }
    body = json.dumps(event).encode()
    t = int(time.time())
    digest = hmac.new(config.payments_webhook_secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return body, {"Tollgate-Signature": f"t={t},v1={digest.hexdigest()}", "Content-Type": "application/json"}


def card_value(page: Page, card: str) -> Locator:
    return page.locator(f'[data-card="{card}"] .value')


async def sign_in_with_key(
    browser: Browser, gateway_url: str, api_key: str, viewport: dict[str, int] | None = None
) -> tuple[BrowserContext, Page, ConsoleWatch]:
    """A fresh browser context signed in with an API key, on the Overview."""
    context = await browser.new_context(viewport=viewport or LAPTOP, base_url=gateway_url)
    page = await context.new_page()
    watch = ConsoleWatch(page)
    await page.goto("/console/")
    await page.get_by_role("button", name="API key").click()
    await page.locator("#key-form input[name=api_key]").fill(api_key)
    await page.locator("#key-form input[name=api_key]").press("Enter")
    await expect(page.locator("main h1")).to_have_text("Overview", timeout=SETTLE_MS)  # argon2, busy CPUs
    await expect(page.locator("main .loading")).to_have_count(0, timeout=SETTLE_MS)
    return context, page, watch


async def register_and_sign_in(
    browser: Browser, gateway_url: str, name: str = "Console Tester", viewport: dict[str, int] | None = None
) -> tuple[BrowserContext, Page, ConsoleWatch, str]:
    """A new account created from the sign-in page; returns its context, page, watch and email."""
    context = await browser.new_context(
        viewport=viewport or LAPTOP, base_url=gateway_url, accept_downloads=True
    )
    page = await context.new_page()
    watch = ConsoleWatch(page)
    email = f"console-{uuid.uuid4().hex[:10]}@example.com"
    await page.goto("/console/")
    await page.get_by_role("button", name="Create account").click()
    await page.locator("#register-form input[name=name]").fill(name)
    await page.locator("#register-form input[name=email]").fill(email)
    await page.locator("#register-form input[name=password]").fill("a long enough password")
    await page.locator("#register-form input[name=password]").press("Enter")
    await expect(page.locator("main h1")).to_have_text("Overview", timeout=SETTLE_MS)  # argon2, busy CPUs
    await expect(page.locator("main .loading")).to_have_count(0, timeout=SETTLE_MS)
    return context, page, watch, email


async def console_bearer(page: Page) -> dict[str, str]:
    """The Authorization header of the session the console keeps, to check its work over HTTP."""
    stored = await page.evaluate("sessionStorage.getItem('tollgate.console.session')")
    return {"Authorization": f"Bearer {session_token(stored)}"}
