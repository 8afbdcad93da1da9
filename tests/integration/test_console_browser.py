"""The web console in a real browser (Debian's Chromium driven by Playwright) against the real stack.

A new person creates an account and is signed in, creates a key (shown once, then only its prefix),
buys a credit package (this test plays the payment provider: it sends the signed webhook, as the
provider would), chats in the playground and sees the balance fall, reads the overview, usage (with
its CSV export) and models pages, on a laptop and a phone width; an admin key signs in and sees the
admin view of keys and payments. Every page visited is checked for console errors, and a screenshot
of each is kept under .local/test-artifacts/console/ (TOLLGATE_ARTIFACTS_DIR to move it).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from pathlib import Path

import httpx
from console_support import (
    LAPTOP,
    PHONE,
    SETTLE_MS,
    ConsoleWatch,
    browser,
    card_value,
    http,
    open_page,
    session_token,
    shot,
    signed_webhook,
)
from playwright.async_api import Browser, expect

from tollgate.devstack.config import StackConfig

__all__ = ["browser", "http"]  # fixtures, imported for pytest


async def test_a_new_person_signs_up_makes_a_key_buys_credits_and_chats(
    browser: Browser, http: httpx.AsyncClient, config: StackConfig, sim_models: list[str]
) -> None:
    gateway_url = str(http.base_url).rstrip("/")
    context = await browser.new_context(viewport=LAPTOP, base_url=gateway_url, accept_downloads=True)
    page = await context.new_page()
    watch = ConsoleWatch(page)

    # sign-in page, then an account created from the keyboard alone (Enter submits)
    await page.goto("/console")
    assert page.url.endswith("/console/")
    await expect(page.locator("#signin-title")).to_be_visible()
    watch.check("sign-in")
    await shot(page, "01-sign-in")
    email = f"console-{uuid.uuid4().hex[:10]}@example.com"
    await page.get_by_role("button", name="Create account").click()
    await page.locator("#register-form input[name=name]").fill("Console Tester")
    await page.locator("#register-form input[name=email]").fill(email)
    await page.locator("#register-form input[name=password]").fill("a long enough password")
    await page.locator("#register-form input[name=password]").press("Enter")
    await expect(page.locator("main h1")).to_have_text("Overview")
    await expect(page.locator("#who")).to_contain_text(email)
    await expect(card_value(page, "balance")).to_have_text("0.00")
    watch.check("Overview (new account)")
    token = session_token(await page.evaluate("sessionStorage.getItem('tollgate.console.session')"))
    bearer = {"Authorization": f"Bearer {token}"}

    # keys: created, shown once, working; afterwards only the prefix is on the page
    await open_page(page, watch, "keys", "Keys")
    await expect(page.locator("main .empty")).to_contain_text("No keys yet")
    await page.locator("#create-key input[name=name]").fill("ci laptop")
    await page.locator("#create-key button[type=submit]").click()
    secret = (await page.locator("#new-key").inner_text()).strip()
    assert secret.startswith("tg_"), secret
    assert (await http.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})).status_code == 200
    await expect(page.locator("main table")).to_contain_text("ci laptop")
    await shot(page, "02-keys-created")
    await page.get_by_role("button", name="I have stored it").click()
    await open_page(page, watch, "overview", "Overview")
    await open_page(page, watch, "keys", "Keys")
    await expect(page.locator("main table")).to_contain_text("ci laptop")
    assert secret not in await page.content(), "the key was shown a second time"
    await shot(page, "03-keys")

    # credits: a package bought, then paid at the (test) provider, credits the balance in the page
    await open_page(page, watch, "credits", "Credits")
    await expect(page.locator("main h2", has_text="Payment history")).to_be_visible()
    await page.locator('button[data-package="pkg_5"]').click()
    pending = page.locator("#purchase-status")
    await expect(pending).to_contain_text("pending")
    payment_id = int(await pending.get_attribute("data-payment") or "0")
    listed = (await http.get("/admin/payment/list", headers=bearer)).json()["data"]
    payment = next(p for p in listed if p["id"] == payment_id)
    assert payment["status"] == "pending"
    body, headers = signed_webhook(config, payment["provider_payment_id"], payment["paid_micros"])
    paid = await http.post("/v1/credits/webhooks/test", content=body, headers=headers)
    assert paid.status_code == 200 and paid.json()["outcome"] == "credited", paid.text
    await expect(page.locator("main .notice.ok")).to_contain_text(f"Payment #{payment_id} succeeded")
    await expect(card_value(page, "balance")).to_have_text("5.00")
    await expect(page.locator('[data-status="succeeded"]')).to_have_count(1)
    watch.check("Credits")
    await shot(page, "04-credits")

    # playground: a streamed answer with its tokens and cost, and the balance falls
    await open_page(page, watch, "playground", "Playground")
    await page.locator("#pg-model").select_option("sim-chat")
    await page.locator("#pg-prompt").fill("Say hello to the console.")
    await page.locator("#pg-prompt").press("Control+Enter")
    answer = page.locator("#pg-chat .msg.assistant")
    await expect(answer.locator(".answer")).not_to_be_empty()
    meta = answer.locator(".meta")
    await expect(meta).to_contain_text("credits at list price", timeout=SETTLE_MS)
    await expect(meta).to_contain_text("balance 5.00", timeout=SETTLE_MS)
    text = await meta.inner_text()
    assert re.search(r"\d+ in, [1-9]\d* out tokens", text), text
    after = re.search(r"→ ([\d.,]+)", text)
    assert after and float(after.group(1).replace(",", "")) < 5, text
    wallet = (await http.get("/v1/credits", headers=bearer)).json()
    assert 0 < wallet["balance_micros"] < 5_000_000, wallet
    watch.check("Playground")
    await shot(page, "05-playground")

    # overview: the request and its spend are counted, the charts drawn
    await open_page(page, watch, "overview", "Overview")
    await expect(card_value(page, "requests")).to_have_text("1")
    await expect(page.locator("main canvas")).to_have_count(2)
    watch.check("Overview")
    await shot(page, "06-overview")

    # usage: analytics' report (its consumer may trail billing's), and the CSV export
    await open_page(page, watch, "usage", "Usage")
    for _ in range(30):
        if await page.locator("main table").count():
            break
        await page.wait_for_timeout(1000)
        await page.locator("main form button[type=submit]").click()  # "Show" loads the report again
        await expect(page.locator("main form button[type=submit]")).to_be_enabled()
    await expect(page.locator("main table")).to_be_visible()
    async with page.expect_download() as download_info:
        await page.locator("#csv-export").click()
    download = await download_info.value
    saved = await download.path()
    rows = list(csv.reader(io.StringIO(await asyncio.to_thread(Path(saved).read_text))))
    assert rows[0][:3] == ["date", "requests", "tokens"], rows[0]
    assert sum(int(r[1]) for r in rows[1:]) == 1, rows
    watch.check("Usage")
    await shot(page, "07-usage")

    await open_page(page, watch, "models", "Models")
    await expect(page.locator("main table")).to_contain_text("sim-chat")
    await shot(page, "08-models")

    # a phone's width: nothing wider than the screen, the menu opens from its button
    await page.set_viewport_size(PHONE)
    await page.goto("/console/#/overview")
    await expect(page.locator("main h1")).to_have_text("Overview")
    await expect(page.locator("main .loading")).to_have_count(0, timeout=SETTLE_MS)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await expect(page.locator("#nav")).to_be_hidden()
    await page.locator("#menu-toggle").click()
    await expect(page.locator('#nav a[data-page="credits"]')).to_be_visible()
    watch.check("Overview (phone)")
    await shot(page, "09-overview-phone")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#signin-title")).to_be_visible()
    watch.check("sign-out")
    await context.close()


async def test_an_admin_key_sees_every_organisations_keys_and_payments(
    browser: Browser, http: httpx.AsyncClient, config: StackConfig
) -> None:
    gateway_url = str(http.base_url).rstrip("/")
    context = await browser.new_context(viewport=LAPTOP, base_url=gateway_url)
    page = await context.new_page()
    watch = ConsoleWatch(page)
    await page.goto("/console/")
    await page.get_by_role("button", name="API key").click()
    await page.locator("#key-form input[name=api_key]").fill(config.admin_api_key)
    await page.locator("#key-form input[name=api_key]").press("Enter")
    await expect(page.locator("main h1")).to_have_text("Overview")
    await expect(page.locator("#who")).to_contain_text("platform admin")
    watch.check("Overview (admin)")

    await open_page(page, watch, "keys", "Keys")
    await expect(page.locator("main")).to_contain_text("Every organisation's keys")
    await expect(page.locator("#create-key select[name=role] option[value=admin]")).to_have_count(1)
    await page.locator("#create-key input[name=name]").fill(f"console-admin-made-{uuid.uuid4().hex[:6]}")
    await page.locator("#create-key button[type=submit]").click()
    secret = (await page.locator("#new-key").inner_text()).strip()
    assert secret.startswith("tg_")
    # credit it from the same notice (the admin recharge), and the key's balance shows it
    await page.locator(".recharge-form input[name=balance]").fill("2.5")
    await page.locator(".recharge-form button[type=submit]").click()
    await expect(page.locator(".recharge-form + div .notice.ok")).to_contain_text("its balance is 2.50")
    credited = await http.get("/v1/credits", headers={"Authorization": f"Bearer {secret}"})
    assert credited.json()["balance_micros"] == 2_500_000, credited.text
    watch.check("Keys (admin)")
    await shot(page, "10-keys-admin")

    # revoke it again: two presses (no dialog), and the key stops working
    revoke = page.locator("button[data-revoke^='console-admin-made-']").first
    await revoke.click()
    await expect(revoke).to_have_text("Confirm revoke")
    await revoke.click()
    await expect(page.locator("main .notice.ok")).to_contain_text("is revoked")
    refused = {"Authorization": f"Bearer {secret}"}
    for _ in range(50):  # revocation reaches every gateway within a second (auth.keys.v1)
        if (await http.get("/v1/models", headers=refused)).status_code == 401:
            break
        await asyncio.sleep(0.1)
    assert (await http.get("/v1/models", headers=refused)).status_code == 401

    await open_page(page, watch, "credits", "Credits")
    await expect(page.locator("main h2", has_text="Payment history")).to_be_visible()
    await expect(page.locator("main th", has_text="Organisation")).to_be_visible()
    await expect(page.locator("main td", has_text="recharge").first).to_be_visible()
    watch.check("Credits (admin)")
    await shot(page, "11-credits-admin")
    await context.close()


async def test_a_wrong_password_is_a_clear_error_and_no_session(browser: Browser, gateway_url: str) -> None:
    context = await browser.new_context(viewport=LAPTOP, base_url=gateway_url)
    page = await context.new_page()
    await page.goto("/console/")
    await page.locator("#signin-form input[name=email]").fill(f"nobody-{uuid.uuid4().hex[:8]}@example.com")
    await page.locator("#signin-form input[name=password]").fill("not the password")
    await page.locator("#signin-form button[type=submit]").click()
    await expect(page.locator(".notice.error")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('tollgate.console.session')") is None
    await expect(page.locator("#topbar")).to_be_hidden()
    await context.close()
