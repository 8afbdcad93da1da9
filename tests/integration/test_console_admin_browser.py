"""The console's admin pages in a real browser (Debian's Chromium under Playwright) against the real
stack: a platform admin key adds a model with prices, its own limits, a fallback, a config key the
form has no field for and a second deployment on the Models page (a refusal of the route shown at the
field it names), edits its price (every other config key kept), adds a Bedrock deployment (region and
credentials, then a new region alone) and deletes it, each change checked
over HTTP; on the Credits page it refunds part of a payment and
adjusts a key's balance, each form sent twice and the balance moving once by exactly its amount;
sets a budget and a low-balance threshold for another organisation, and sees the low-balance alert
that threshold fires, with its Kafka delivery. A key without admin rights keeps the read-only views.
Every page is checked for console errors; screenshots 40-49 go to .local/test-artifacts/console/."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
from console_support import (
    PHONE,
    SETTLE_MS,
    ConsoleWatch,
    browser,
    http,
    open_page,
    shot,
    sign_in_with_key,
)
from playwright.async_api import Browser, Page, expect

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account

__all__ = ["browser", "http"]  # fixtures, imported for pytest


def expect_refused(watch: ConsoleWatch, status: int) -> None:
    """Chromium logs every refused fetch as a console error; the ones this test caused on purpose
    (the route's refusal it then checks on the page) are not the page's errors."""
    refused = f"the server responded with a status of {status}"
    assert any(refused in e for e in watch.errors), watch.errors
    watch.errors = [e for e in watch.errors if refused not in e]


async def fits_a_phone(page: Page) -> bool:
    await page.set_viewport_size(PHONE)
    fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.set_viewport_size({"width": 1280, "height": 800})
    return bool(fits)


async def test_an_admin_key_adds_edits_and_deletes_a_model(
    browser: Browser, http: httpx.AsyncClient, config: StackConfig, sim_models: list[str], sim_url: str
) -> None:
    gateway_url = str(http.base_url).rstrip("/")
    admin = {"Authorization": f"Bearer {config.admin_api_key}"}
    context, page, watch = await sign_in_with_key(browser, gateway_url, config.admin_api_key)
    await open_page(page, watch, "models", "Models")
    await expect(page.locator("main tr[data-model='sim-chat']")).to_be_visible()
    await shot(page, "40-models-catalog")

    name = f"console-model-{uuid.uuid4().hex[:6]}"
    await page.locator("#add-model").click()
    form = page.locator("#model-form")
    await form.locator("input[name=name]").fill(name)
    await form.locator("select[name=provider]").select_option("openai-compatible")
    await form.locator("input[name=base_url]").fill(f"{sim_url}/v1")
    await form.locator("input[name=model]").fill("sim-chat")
    await form.locator("input[name=api_key]").fill("sk-sim-secret")
    await form.locator("input[name=price_in]").fill("2")
    await form.locator("input[name=price_out]").fill("4")
    await form.locator("input[name=price_request]").fill("0.01")
    await form.locator("input[name=rpm]").fill("600")
    await form.locator("input[name=fallbacks]").fill("sim-chat")
    # a config key the form has no field for: kept as typed, and by every later edit
    await form.locator("textarea[name=other_config]").fill('{"route_tag": {"tier": "gold"}}')
    await page.locator("#add-deployment").click()
    deployment = form.locator("fieldset.deployment").first
    await deployment.locator("input[name=dep_name]").fill("b")
    await deployment.locator("input[name=dep_base_url]").fill(f"{sim_url}/v1")
    await deployment.locator("input[name=dep_weight]").fill("0")  # refused by the route
    await deployment.locator("input[name=dep_priority]").fill("1")
    await form.locator("button[type=submit]").click()
    refusal = form.locator(".form-error .notice.error")
    await expect(refusal).to_contain_text("weight must be an integer from 1")
    await expect(deployment.locator("input[name=dep_weight]")).to_have_attribute("aria-invalid", "true")
    listed = await http.get(f"/admin/model/list?q={name}", headers=admin)
    assert listed.json()["total"] == 0, "a refused save wrote something"
    expect_refused(watch, 400)
    watch.check("Models (refused save)")
    await shot(page, "41-models-form-refused")

    await deployment.locator("input[name=dep_weight]").fill("3")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("main .notice.ok")).to_contain_text(f"Added {name}")
    row = page.locator(f"main tr[data-model='{name}']")
    await expect(row).to_contain_text("sim-chat")  # the fallback
    await expect(row.locator("li[data-deployment='b']")).to_contain_text("weight 3, priority 1")
    saved = (await http.get(f"/admin/model/list?q={name}", headers=admin)).json()["data"][0]
    assert (saved["price_in"], saved["price_out"], saved["price_request"]) == (2, 4, 0.01), saved
    assert (saved["rpm"], saved["fallbacks"], saved["has_api_key"]) == (600, ["sim-chat"], True), saved
    assert [(d["name"], d["weight"], d["priority"]) for d in saved["deployments"]] == [("b", 3, 1)]
    assert saved["config"]["route_tag"] == {"tier": "gold"}, saved
    callable_ = (await http.get("/v1/models", headers=admin)).json()["data"]
    assert name in [m["id"] for m in callable_]
    watch.check("Models (added)")

    # edit the price: the form comes back filled in, and what was not touched is kept
    await row.locator(f"button[data-edit='{name}']").click()
    await expect(form.locator("input[name=price_in]")).to_have_value("2")
    await expect(form.locator("input[name=dep_weight]")).to_have_value("3")
    await expect(form.locator("textarea[name=other_config]")).to_contain_text('"tier": "gold"')
    await form.locator("input[name=price_in]").fill("2.5")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("main .notice.ok")).to_contain_text(f"Saved {name}")
    await expect(row).to_contain_text("2.50")
    edited = (await http.get(f"/admin/model/list?q={name}", headers=admin)).json()["data"][0]
    assert (edited["price_in"], edited["price_out"], edited["rpm"]) == (2.5, 4, 600), edited
    assert edited["has_api_key"] and edited["deployments"][0]["weight"] == 3, edited
    assert edited["config"] == {**saved["config"]}, edited  # nothing but the price changed
    info = (await http.get(f"/models/openai-compatible/{name}", headers=admin)).json()
    assert info["pricing"]["input"] == 0.0025, info  # per 1K tokens, as IndoxRouter shows
    assert await fits_a_phone(page)
    watch.check("Models (edited)")
    await shot(page, "42-models-edited")

    # a Bedrock deployment: region and credentials instead of a base URL and key, the credentials
    # never shown again, and a new region alone keeps them (the route re-signs them for it)
    await row.locator(f"button[data-edit='{name}']").click()
    await page.locator("#add-deployment").click()
    bedrock = form.locator("fieldset.deployment").nth(1)
    await bedrock.locator("input[name=dep_name]").fill("eu")
    await bedrock.locator("select[name=dep_provider]").select_option("bedrock-converse")
    await expect(bedrock.locator("input[name=dep_base_url]")).to_be_hidden()
    await expect(bedrock.locator("input[name=dep_api_key]")).to_be_hidden()
    await bedrock.locator("input[name=dep_region]").fill("eu-west-1")
    await bedrock.locator("input[name=dep_accessKeyId]").fill("AKID-CONSOLE")
    await bedrock.locator("input[name=dep_secretAccessKey]").fill("console-aws-secret")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("main .notice.ok")).to_contain_text(f"Saved {name}")
    # the list is loaded again after the notice: edit (and later delete) from the new rows
    await expect(row.locator("li[data-deployment='eu']")).to_contain_text("bedrock-runtime.eu-west-1")
    listed_page = (await http.get(f"/admin/model/list?q={name}", headers=admin)).text
    assert "AKID-CONSOLE" not in listed_page and "console-aws-secret" not in listed_page
    with_eu = (await http.get(f"/admin/model/list?q={name}", headers=admin)).json()["data"][0]
    eu = next(d for d in with_eu["deployments"] if d["name"] == "eu")
    assert (eu["provider"], eu["region"], eu["has_api_key"]) == ("bedrock-converse", "eu-west-1", True), eu
    assert eu["base_url"] == "https://bedrock-runtime.eu-west-1.amazonaws.com", eu
    await row.locator(f"button[data-edit='{name}']").click()
    bedrock = form.locator("fieldset.deployment").nth(1)
    await expect(bedrock.locator("input[name=dep_region]")).to_have_value("eu-west-1")
    await expect(bedrock.locator("input[name=dep_accessKeyId]")).to_have_value("")
    await bedrock.locator("input[name=dep_region]").fill("us-west-2")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("main .notice.ok")).to_contain_text(f"Saved {name}")
    await expect(row.locator("li[data-deployment='eu']")).to_contain_text("bedrock-runtime.us-west-2")
    moved = (await http.get(f"/admin/model/list?q={name}", headers=admin)).json()["data"][0]
    eu = next(d for d in moved["deployments"] if d["name"] == "eu")
    assert (eu["region"], eu["has_api_key"]) == ("us-west-2", True), eu
    assert eu["base_url"] == "https://bedrock-runtime.us-west-2.amazonaws.com", eu
    watch.check("Models (Bedrock deployment)")

    delete = row.locator(f"button[data-delete='{name}']")
    await delete.click()
    await expect(delete).to_have_text("Confirm delete")
    await delete.click()
    await expect(page.locator("main .notice.ok")).to_contain_text(f"{name} is deleted")
    await expect(page.locator(f"main tr[data-model='{name}']")).to_have_count(0)
    assert (await http.get(f"/admin/model/list?q={name}", headers=admin)).json()["total"] == 0
    watch.check("Models (deleted)")
    await context.close()


async def balance(http: httpx.AsyncClient, key: str) -> int:
    resp = await http.get("/v1/credits", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    return int(resp.json()["balance_micros"])


async def test_an_admin_refunds_adjusts_sets_budgets_and_sees_alert_deliveries(
    browser: Browser, http: httpx.AsyncClient, config: StackConfig, new_account: Callable[..., Account]
) -> None:
    gateway_url = str(http.base_url).rstrip("/")
    admin = {"Authorization": f"Bearer {config.admin_api_key}"}
    account = new_account(credits=10)  # an organisation with a 10-credit admin recharge
    payments = (await http.get(f"/admin/payment/list?key_id={account.key_id}", headers=admin)).json()["data"]
    (payment,) = payments
    assert await balance(http, account.key) == 10_000_000

    context, page, watch = await sign_in_with_key(browser, gateway_url, config.admin_api_key)
    await open_page(page, watch, "credits", "Credits")

    # a refund of 2.5 of the 10, sent twice: taken back once
    refund = page.locator("#refund-form")
    await refund.locator("input[name=payment_id]").fill(str(payment["id"]))
    await refund.locator("input[name=amount]").fill("2.5")
    await refund.locator("input[name=reason]").fill("console test")
    await refund.locator("button[type=submit]").click()
    refund_said = page.locator("#refund-form + div .notice")
    await expect(refund_said).to_contain_text(f"of payment #{payment['id']}: 2.50 returned")
    assert await balance(http, account.key) == 7_500_000
    await refund.locator("button[type=submit]").click()
    await expect(refund_said).to_contain_text("already recorded")
    assert await balance(http, account.key) == 7_500_000

    # an adjustment of +1.25 to the key's organisation, submitted twice at once: moved once
    adjust = page.locator("#adjust-form")
    await adjust.locator("select[name=target]").select_option("api_key")
    await adjust.locator("input[name=target_value]").fill(account.key)
    await adjust.locator("input[name=amount]").fill("1.25")
    await adjust.locator("input[name=reason]").fill("goodwill")
    await page.evaluate(
        "() => { const f = document.getElementById('adjust-form'); f.requestSubmit(); f.requestSubmit(); }"
    )
    adjust_said = page.locator("#adjust-form + div .notice")
    await expect(adjust_said).to_be_visible()
    await expect(adjust.locator("button[type=submit]")).to_be_enabled()
    assert await balance(http, account.key) == 8_750_000
    await adjust.locator("button[type=submit]").click()
    await expect(adjust_said).to_contain_text("already recorded")
    assert await balance(http, account.key) == 8_750_000
    # a refusal of the route, in its own words, changes nothing
    await adjust.locator("input[name=amount]").fill("0")
    await adjust.locator("button[type=submit]").click()
    await expect(adjust_said).to_have_class("notice error")
    await expect(adjust_said).to_contain_text("zero")
    assert await balance(http, account.key) == 8_750_000
    expect_refused(watch, 400)
    watch.check("Credits (refund, adjustment)")
    await shot(page, "43-credits-refund-adjust")

    # budgets and the low-balance alert of the account's organisation
    await page.locator("#cost-org-form input[name=org_id]").fill(account.org_id)
    await page.locator("#cost-org-form button[type=submit]").click()
    await expect(page.locator(f".cost-settings[data-org='{account.org_id}']")).to_be_visible()
    budget = page.locator("#budget-form")
    await budget.locator("input[name=monthly_budget]").fill("20")
    await budget.locator("input[name=alert_threshold]").fill("90")
    await budget.locator("button[type=submit]").click()
    budget_said = page.locator("#budget-status .notice.ok")
    await expect(budget_said).to_contain_text("Budget set: 20.00 credits monthly")
    await expect(page.locator("tr[data-budget='org-monthly']")).to_contain_text("90%")
    budgets = (await http.get(f"/cost/budget?org_id={account.org_id}", headers=admin)).json()
    listed = [(b["monthly_budget"], b["alert_threshold"], b["key_id"]) for b in budgets["data"]]
    assert listed == [(20, 0.9, None)], budgets

    # a threshold above the balance (8.75) fires a low-balance alert at once
    low = page.locator("#low-balance-form")
    await low.locator("input[name=low_balance_threshold]").fill("10")
    await low.locator("button[type=submit]").click()
    await expect(page.locator("#low-balance-status .notice.ok")).to_be_visible()
    state = page.locator("#low-balance-state")
    await expect(state).to_contain_text("below 10.00 credits (now 8.75, below it)")
    setting = (await http.get(f"/cost/low-balance?org_id={account.org_id}", headers=admin)).json()
    assert (setting["low_balance_threshold_micros"], setting["below_threshold"]) == (10_000_000, True)

    alert = page.locator("tr[data-alert='low_balance']")
    await expect(alert).to_have_count(1)
    await expect(alert).to_contain_text("below 10.00 credits")
    kafka = alert.locator("li[data-channel='kafka'] [data-delivery]")
    for _ in range(SETTLE_MS // 1000):  # the worker's dispatcher sends it within a second or two
        if await kafka.get_attribute("data-delivery") == "delivered":
            break
        await page.wait_for_timeout(1000)
        await page.locator("#alerts-refresh").click()
        await expect(page.locator("#alerts-refresh")).to_be_enabled()
    await expect(kafka).to_have_attribute("data-delivery", "delivered")
    alerts = (await http.get(f"/cost/alerts?org_id={account.org_id}", headers=admin)).json()["data"]
    assert [a["kind"] for a in alerts] == ["low_balance"], alerts
    assert await fits_a_phone(page)
    watch.check("Credits (budgets, alerts)")
    await shot(page, "44-credits-budgets-alerts")
    await context.close()

    # the account's own key: no catalog editor and no refunds, its budgets and alert readable
    context, page, watch = await sign_in_with_key(browser, gateway_url, account.key)
    await open_page(page, watch, "models", "Models")
    await expect(page.locator("main table")).to_contain_text("sim-chat")
    await expect(page.locator("#add-model")).to_have_count(0)
    await shot(page, "45-models-read-only")
    await open_page(page, watch, "credits", "Credits")
    await expect(page.locator("#refund-form")).to_have_count(0)
    await expect(page.locator("#adjust-form")).to_have_count(0)
    await expect(page.locator("tr[data-budget='org-monthly']")).to_contain_text("20.00")
    await expect(page.locator("#low-balance-state")).to_contain_text("below 10.00 credits")
    watch.check("Credits (the account's key)")
    await shot(page, "46-credits-owner")
    await context.close()
