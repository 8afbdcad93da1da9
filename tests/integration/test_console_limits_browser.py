"""The console's rate limits (docs/limits.md) and the chat records' organisation-wide purge and
recording setting from a password session, in a real browser (Debian's Chromium under Playwright)
against the real stack. Screenshots 80-89.

A platform admin key creates a rate tier (a bad name first: refused at the field), puts a key of a
team organisation on it with an override and sets the organisation's limits, each checked over HTTP,
and is told in plain words that a tier in use cannot be deleted. The team owner's key then reads its
organisation's and its key's limits, with no form to change them, and the owner signed in with a
password reads the organisation's limits on the Organisations page through the audit log's
read-only key.

A team organisation's owner signed in with a password makes the console a key for a day to read and
change the chat recording setting (API keys only), turns it on (checked over HTTP), and after a
recorded chat deletes every record of the organisation in two steps (gone over HTTP).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from console_support import (
    PHONE,
    SETTLE_MS,
    ConsoleWatch,
    browser,
    console_bearer,
    http,
    open_page,
    register_and_sign_in,
    shot,
    sign_in_with_key,
)
from playwright.async_api import Browser, Page, expect

from tollgate.devstack.config import StackConfig

__all__ = ["browser", "http"]  # fixtures, imported for pytest


@pytest.fixture(autouse=True)
def _patient_expect() -> Iterator[None]:
    """Two shared cores and argon2: give each expectation 15 s here, and restore Playwright's 5 s."""
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=5_000)


def _expected_refusal(watch: ConsoleWatch, status: int) -> None:
    """A refusal the test asked for: the browser logs the failed load itself (one line); that line,
    and nothing else, is taken off the watch."""
    line = f"the server responded with a status of {status}"
    assert sum(line in e for e in watch.errors) == 1, watch.errors
    watch.errors = [e for e in watch.errors if line not in e]


async def _expect_effective(page: Page, box: str, measure: str, value: str) -> None:
    """Waits for the panel's "In effect" cell: the "saved" notice shows before the panel is read again."""
    await expect(page.locator(f"{box} [data-effective={measure}]")).to_have_text(value)


async def test_rate_limits_in_the_console(
    browser: Browser, http: httpx.AsyncClient, config: StackConfig
) -> None:
    tag = uuid.uuid4().hex[:8]
    gateway_url = str(http.base_url).rstrip("/")
    admin = {"Authorization": f"Bearer {config.admin_api_key}"}

    # a person (signed in with a password) owns a team organisation with an owner's key in it
    p_context, p_page, p_watch, _email = await register_and_sign_in(browser, gateway_url, "Lim Owner")
    bearer = await console_bearer(p_page)
    team = f"Limits Team {tag}"
    made = await http.post("/auth/orgs", json={"name": team}, headers=bearer)
    assert made.status_code == 201, made.text
    team_id = made.json()["id"]
    owned = await http.post(
        "/auth/api-keys",
        json={"name": f"owner-{tag}", "permissions": ["read", "write"]},
        headers={**bearer, "Swarms-Organization": team_id},
    )
    assert owned.status_code == 201, owned.text
    owner_key, owner_key_id, owner_key_name = owned.json()["api_key"], owned.json()["id"], f"owner-{tag}"

    # the platform admin: tiers
    context, page, watch = await sign_in_with_key(browser, gateway_url, config.admin_api_key)
    await open_page(page, watch, "limits", "Rate limits")
    await expect(page.locator("#tiers table")).to_contain_text("enterprise")
    tier = f"console-{tag}"
    form = page.locator("#save-tier")
    await form.locator("input[name=name]").fill("bad tier")  # a space: the route refuses the name
    await form.locator("input[name=rpm]").fill("7")
    await form.locator("button[type=submit]").click()
    await expect(form.locator("input[name=name]")).to_have_attribute("aria-invalid", "true")
    await expect(form.locator(".field-error")).to_be_visible()
    _expected_refusal(watch, 400)
    listed = (await http.get("/admin/rate-tier/list", headers=admin)).json()["data"]
    assert not [t for t in listed if t["name"] == "bad tier"]
    await shot(page, "80-limits-tier-refused")

    await form.locator("input[name=name]").fill(tier)
    await form.locator("input[name=tpd]").fill("5000")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#limits-status .notice.ok")).to_contain_text(f"“{tier}” was saved")
    await expect(form.locator(".field-error")).to_have_count(0)
    await expect(page.locator("#tiers table")).to_contain_text(tier)
    listed = (await http.get("/admin/rate-tier/list", headers=admin)).json()["data"]
    assert [(t["rpm"], t["tpm"], t["tpd"]) for t in listed if t["name"] == tier] == [(7, None, 5000)]
    # Edit fills the form from the row
    await page.locator(f'button[data-edit-tier="{tier}"]').click()
    await expect(form.locator("input[name=name]")).to_have_value(tier)
    await expect(form.locator("input[name=rpm]")).to_have_value("7")
    watch.check("Rate limits (tiers)")

    # a key's limits on the Keys page: the tier and a tokens-per-minute override
    await open_page(page, watch, "keys", "Keys")
    await page.locator(f'button[data-limits="{owner_key_name}"]').click()
    panel = page.locator("#key-limits")
    await expect(panel.locator("h3")).to_contain_text(owner_key_name)
    await panel.locator("select[name=tier]").select_option(tier)
    await panel.locator("input[name=tpm]").fill("900")
    await panel.locator("button[type=submit]").click()
    await expect(panel.locator(".notice.ok")).to_contain_text("saved")
    await _expect_effective(page, "#key-limits", "rpm", "7")
    await _expect_effective(page, "#key-limits", "tpm", "900")
    over_http = (await http.get(f"/admin/api-key/limits?id={owner_key_id}", headers=admin)).json()
    assert (over_http["tier"], over_http["tpm"], over_http["effective"]["rpm"]) == (tier, 900, 7), over_http
    # a number the route refuses (0 is not a limit; the field allows it only past the browser's check)
    await panel.locator("input[name=rpm]").evaluate("(el) => { el.min = ''; el.value = '0'; }")
    await panel.locator("button[type=submit]").click()
    await expect(panel.locator("input[name=rpm]")).to_have_attribute("aria-invalid", "true")
    await expect(panel.locator(".field-error")).to_contain_text("rpm")
    _expected_refusal(watch, 400)
    watch.check("Keys (a key's limits)")
    await shot(page, "81-keys-limits")

    # the organisation's limits, and the tier's delete refused while in use
    await open_page(page, watch, "limits", "Rate limits")
    await page.locator("#org-limits-lookup input[name=org_id]").fill(team_id)
    await page.locator("#org-limits-lookup button[type=submit]").click()
    org_panel = page.locator("#org-limits")
    await org_panel.locator("select[name=tier]").select_option("pro")
    await org_panel.locator("input[name=rpm]").fill("250")
    await org_panel.locator("button[type=submit]").click()
    await expect(org_panel.locator(".notice.ok")).to_contain_text("saved")
    await _expect_effective(page, "#org-limits", "rpm", "250")
    org_http = (await http.get(f"/admin/org/limits?org_id={team_id}", headers=admin)).json()
    org_set = (org_http["tier"], org_http["rpm"], org_http["effective"]["tpd"])
    assert org_set == ("pro", 250, 100_000), org_http
    delete = page.locator(f'button[data-delete-tier="{tier}"]')
    await delete.click()
    await expect(delete).to_have_text("Confirm delete")
    await delete.click()
    refused = page.locator("#limits-status .notice.error")
    await expect(refused).to_contain_text("is in use and was not deleted")
    _expected_refusal(watch, 409)
    listed = (await http.get("/admin/rate-tier/list", headers=admin)).json()["data"]
    assert [t["name"] for t in listed if t["name"] == tier] == [tier]
    watch.check("Rate limits (organisation, refused delete)")
    await shot(page, "82-limits-org-and-refusal")
    await page.set_viewport_size(PHONE)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await shot(page, "83-limits-phone")
    await context.close()

    # the owner's key reads its organisation's and its key's limits; nothing to change them with
    o_context, o_page, o_watch = await sign_in_with_key(browser, gateway_url, owner_key)
    await open_page(o_page, o_watch, "limits", "Rate limits")
    await expect(o_page.locator("#tiers table")).to_contain_text(tier)
    await expect(o_page.locator("#save-tier")).to_have_count(0)
    await expect(o_page.locator("button[data-delete-tier]")).to_have_count(0)
    await expect(o_page.locator("#org-limits [data-effective=rpm]")).to_have_text("250")
    await expect(o_page.locator("#org-limits form")).to_have_count(0)
    await open_page(o_page, o_watch, "keys", "Keys")
    await o_page.locator(f'button[data-limits="{owner_key_name}"]').click()
    await expect(o_page.locator("#key-limits [data-effective=tpm]")).to_have_text("900")
    await expect(o_page.locator("#key-limits form")).to_have_count(0)
    o_watch.check("Keys (an organisation admin reads a key's limits)")
    await shot(o_page, "84-keys-limits-read-only")
    await o_context.close()

    # the owner signed in with a password: the Organisations page reads them with the audit key
    await open_page(p_page, p_watch, "orgs", "Organisations")
    await p_page.locator(f'button[data-open="{team}"]').click()
    await p_page.locator("#audit-make-key").click()
    await expect(p_page.locator("#org-limits-box [data-effective=rpm]")).to_have_text("250")
    await expect(p_page.locator("#org-limits-box [data-effective=tier]")).to_have_text("pro")
    p_watch.check("Organisations (rate limits)")
    await p_page.locator("#org-limits-box").scroll_into_view_if_needed()
    await shot(p_page, "85-orgs-limits")
    await p_context.close()


async def _recorded_chat(http: httpx.AsyncClient, key: str, word: str) -> str:
    """Chats until one is recorded (the gateway's cached principal follows the new setting once
    auth's announcement reaches it); answers the recorded session's id."""
    headers = {"Authorization": f"Bearer {key}"}
    for attempt in range(60):
        session = f"purge-{word}-{attempt}"
        resp = await http.post(
            "/v1/chat/completions",
            json={"model": "sim-chat", "messages": [{"role": "user", "content": word}], "max_tokens": 16},
            headers={**headers, "X-Session-Id": session},
        )
        assert resp.status_code == 200, resp.text
        for _ in range(10):
            listed = (await http.get("/user/session/list", params={"limit": 100}, headers=headers)).json()
            if any(s["session_id"] == session for s in listed["data"]):
                return session
            await asyncio.sleep(0.5)
    raise AssertionError("no chat was recorded")


async def test_chat_records_setting_and_purge_from_a_password_session(
    browser: Browser, http: httpx.AsyncClient, config: StackConfig, sim_models: list[str]
) -> None:
    tag = uuid.uuid4().hex[:8]
    gateway_url = str(http.base_url).rstrip("/")
    admin = {"Authorization": f"Bearer {config.admin_api_key}"}
    context, page, watch, _email = await register_and_sign_in(browser, gateway_url, "Rec Owner")
    bearer = await console_bearer(page)
    team = f"Records Team {tag}"
    made = await http.post("/auth/orgs", json={"name": team}, headers=bearer)
    assert made.status_code == 201, made.text
    team_id = made.json()["id"]
    chatter = await http.post(
        "/auth/api-keys",
        json={"name": f"chatter-{tag}"},
        headers={**bearer, "Swarms-Organization": team_id},
    )
    assert chatter.status_code == 201, chatter.text
    chat_key = chatter.json()["api_key"]
    recharge = {"api_key": chat_key, "balance": 1}
    funded = await http.post("/admin/api-key/recharge", json=recharge, headers=admin)
    assert funded.status_code == 200, funded.text

    # into the team organisation (the switch lists it after a navigation), then Chat records
    await open_page(page, watch, "orgs", "Organisations")
    await page.locator("#org-select").select_option(team_id)
    await page.locator("#org-switch button[type=submit]").click()
    await expect(page.locator("#who")).to_contain_text(team)
    await expect(page.locator("main .loading")).to_have_count(0, timeout=SETTLE_MS)
    await open_page(page, watch, "records", "Chat records")
    await page.locator("#rec-make-key").click()
    await expect(page.locator('#rec-current [data-mode="off"]')).to_be_visible()
    await page.locator("#rec-mode").select_option("full")
    await page.locator("#rec-save").click()
    await expect(page.locator(".rec-setting .notice.ok")).to_contain_text("full")
    setting = await http.get("/admin/org/chat-recording", params={"org_id": team_id}, headers=admin)
    assert setting.json()["mode"] == "full", setting.text
    watch.check("Chat records (setting from a password session)")
    await shot(page, "86-records-setting-password")

    # a recorded chat, then every record of the organisation deleted in two steps
    session = await _recorded_chat(http, chat_key, f"purge{tag}")
    await page.reload()
    await expect(page.locator("main .loading")).to_have_count(0, timeout=SETTLE_MS)
    await expect(page.locator("main table")).to_contain_text(session)
    await page.locator("#rec-purge").click()
    await expect(page.locator("#rec-purge-warning")).to_contain_text("cannot be undone")
    await shot(page, "87-records-purge-confirm")
    await page.locator("#rec-purge-confirm").click()
    await expect(page.locator(".rec-purge .notice.ok")).to_contain_text("Deleted")
    chat_headers = {"Authorization": f"Bearer {chat_key}"}
    listed = (await http.get("/user/session/list", params={"limit": 100}, headers=chat_headers)).json()
    assert listed["total"] == 0, listed
    watch.check("Chat records (purged)")
    await shot(page, "88-records-purged")
    await context.close()
