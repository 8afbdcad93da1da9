"""The console's Organisations page and the Keys page's admin parts, in a real browser (Debian's
Chromium under Playwright) against the real stack.

A person creates a team organisation, invites a second person (who accepts from the link in their own
browser), changes their role, removes them and reads the audit log of it all; an admin key grants a
key models and builds a group with models, and the gateway then refuses the models not granted; a
person's plain (non-admin) key signs in without a single console error. Screenshots 20-29.
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
DASH = "\u2013"  # the page writes ranges with an en dash: "1<DASH>5 of 6"


@pytest.fixture(autouse=True)
def _patient_expect() -> Iterator[None]:
    """Two shared cores and argon2: give each expectation 15 s here, and restore Playwright's 5 s."""
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=5_000)


async def _note(page: Page, text: str) -> None:
    await expect(page.locator("#orgs-status .notice")).to_contain_text(text)


def _expected_refusal(watch: ConsoleWatch, status: int) -> None:
    """A refusal the test asked for: the browser itself logs the failed load (one line per request);
    that one line, and nothing else, is taken off the watch."""
    line = f"the server responded with a status of {status}"
    assert sum(line in e for e in watch.errors) == 1, watch.errors
    watch.errors = [e for e in watch.errors if line not in e]


async def test_a_plain_key_signs_in_with_no_console_error(browser: Browser, http: httpx.AsyncClient) -> None:
    email = f"plain-{uuid.uuid4().hex[:10]}@example.com"
    made = await http.post(
        "/auth/register", json={"email": email, "password": "a long enough password", "name": "Plain"}
    )
    assert made.status_code == 201, made.text
    bearer = {"Authorization": f"Bearer {made.json()['access_token']}"}
    key = await http.post("/auth/api-keys", json={"name": "plain"}, headers=bearer)
    assert key.status_code == 201, key.text

    gateway_url = str(http.base_url).rstrip("/")
    context, page, watch = await sign_in_with_key(browser, gateway_url, key.json()["api_key"])
    await expect(page.locator("#who")).to_contain_text(email)
    await expect(page.locator("#who")).not_to_contain_text("admin")
    watch.check("Overview (a plain key)")  # no probe of a route the key may not use
    await open_page(page, watch, "keys", "Keys")
    await expect(page.locator("main table")).to_contain_text("plain")
    await expect(page.locator("#groups")).to_have_count(0)
    await open_page(page, watch, "orgs", "Organisations")
    await expect(page.locator("main table")).to_contain_text("personal")
    await shot(page, "20-plain-key-orgs")
    await context.close()


async def test_a_person_runs_a_team_organisation(browser: Browser, http: httpx.AsyncClient) -> None:
    gateway_url = str(http.base_url).rstrip("/")
    guest_ctx, guest, guest_watch, guest_email = await register_and_sign_in(
        browser, gateway_url, "Grace Guest"
    )
    owner_ctx, page, watch, _ = await register_and_sign_in(browser, gateway_url, "Olive Owner")
    owner_bearer = await console_bearer(page)

    await open_page(page, watch, "orgs", "Organisations")
    team = f"Console Team {uuid.uuid4().hex[:6]}"
    await page.locator("#create-org input[name=name]").fill(team)
    await page.locator("#create-org input[name=name]").press("Enter")
    await _note(page, "you are its owner")
    await expect(page.locator("#org-title")).to_have_text(team)
    orgs = (await http.get("/auth/orgs", headers=owner_bearer)).json()["data"]
    org_id = next(o["id"] for o in orgs if o["name"] == team)

    # a refusal in plain words: adding someone who has no account yet
    await page.locator("#add-member input[name=email]").fill(f"nobody-{uuid.uuid4().hex[:6]}@example.com")
    await page.locator("#add-member button[type=submit]").click()
    await _note(page, "Nobody has an account with that email yet")
    _expected_refusal(watch, 404)

    # the invitation: its token and link shown once
    await page.locator("#invite input[name=email]").fill(guest_email)
    await page.locator("#invite button[type=submit]").click()
    token = (await page.locator("#invitation-token").inner_text()).strip()
    assert token.startswith("inv_"), token
    link = (await page.locator("#invitation-link").inner_text()).strip()
    await expect(page.locator("#invitations table")).to_contain_text(guest_email)
    watch.check("Organisations (invited)")
    await shot(page, "21-orgs-invitation")

    # the guest opens the link signed in as themselves: the token is filled in, one press accepts
    await guest.goto(link)
    await expect(guest.locator("main h1")).to_have_text("Organisations")
    await expect(guest.locator("#accept-invitation input[name=token]")).to_have_value(token)
    await guest.locator("#accept-invitation button[type=submit]").click()
    await _note(guest, f"You joined “{team}” as member")
    await expect(guest.locator("main table").first).to_contain_text(team)
    guest_watch.check("Organisations (accepted)")
    await shot(guest, "22-orgs-invitation-accepted")

    # the owner makes the guest an admin
    await page.locator(f'button[data-open="{team}"]').click()
    await expect(page.locator("#members table")).to_contain_text(guest_email)
    await page.locator(f'select[data-role-of="{guest_email}"]').select_option("admin")
    await page.locator(f'button[data-change-role="{guest_email}"]').click()
    await _note(page, f"{guest_email} is now admin")
    members = (await http.get(f"/auth/orgs/{org_id}/members", headers=owner_bearer)).json()["data"]
    assert {m["email"]: m["role"] for m in members}[guest_email] == "admin", members

    # as an admin the guest manages members but is offered no owner role, and cannot touch the owner
    await guest.goto(f"{gateway_url}/console/#/orgs?org={org_id}")
    await expect(guest.locator("#org-title")).to_have_text(team)
    await expect(guest.locator("#invite select[name=role] option")).to_have_count(2)
    await expect(guest.locator("#invite select[name=role] option[value=owner]")).to_have_count(0)
    await expect(guest.locator("#members select")).to_have_count(0)  # the owner's row has no controls
    guest_watch.check("Organisations (guest is admin)")
    await shot(guest, "23-orgs-admin-view")
    await guest_ctx.close()

    # the owner removes the guest: two presses, no dialog
    remove = page.locator(f'button[data-remove="{guest_email}"]')
    await remove.click()
    await expect(remove).to_have_text("Confirm remove")
    await remove.click()
    await _note(page, f"{guest_email} was removed")
    await expect(page.locator("#members table")).not_to_contain_text(guest_email)
    members = (await http.get(f"/auth/orgs/{org_id}/members", headers=owner_bearer)).json()["data"]
    assert guest_email not in {m["email"] for m in members}, members
    watch.check("Organisations (member removed)")

    # the audit log takes an organisation admin's API key, not the password session (auth says so)...
    refused = await http.get("/admin/audit/list", headers=owner_bearer)
    assert refused.status_code == 401, refused.text
    # ...so the console makes a read-only one in this organisation, on request, and reads it with that
    await page.locator("#audit-make-key").click()
    rows = page.locator("#audit-rows")
    for action in ("org.create", "invitation.create", "invitation.accept", "member.role", "member.remove"):
        await expect(rows).to_contain_text(action, timeout=SETTLE_MS)
    await expect(rows).not_to_contain_text(token)  # never key material
    watch.check("Organisations (audit log)")
    await shot(page, "24-orgs-audit-log")

    # the action filter, then paging five at a time
    await page.locator("#audit-action").select_option("member.role")
    await expect(page.locator("#audit-range")).to_have_text(f"1{DASH}1 of 1")
    await expect(rows.locator("tbody tr")).to_have_count(1)
    await expect(rows).to_contain_text("member.role")
    await page.locator("#audit-action").select_option("")
    await page.locator("#audit-limit").select_option("5")
    await expect(page.locator("#audit-range")).to_contain_text(f"1{DASH}5 of ")
    total = int((await page.locator("#audit-range").inner_text()).split(" of ")[1])
    assert total >= 6, total  # the five actions above and the reader key's creation
    await expect(page.locator("#audit-prev")).to_be_disabled()
    await page.locator("#audit-next").click()
    await expect(page.locator("#audit-range")).to_contain_text(f"6{DASH}{min(10, total)} of {total}")
    await expect(page.locator("#audit-prev")).to_be_enabled()
    watch.check("Organisations (audit paging)")

    # a phone's width: tables scroll inside their frames, nothing is wider than the screen
    await page.set_viewport_size(PHONE)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await shot(page, "28-orgs-phone")
    await owner_ctx.close()


async def _chat(http: httpx.AsyncClient, secret: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    return await http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"})


async def _refused(http: httpx.AsyncClient, secret: str, model: str) -> httpx.Response:
    """The gateway's answer once the grant change reached it (auth.keys.v1 drops cached principals)."""
    for _ in range(50):
        resp = await _chat(http, secret, model)
        if resp.status_code == 403:
            return resp
        await asyncio.sleep(0.1)
    return resp


async def _visible_models(http: httpx.AsyncClient, secret: str) -> set[str]:
    resp = await http.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 200, resp.text
    return {m["id"] for m in resp.json()["data"]}


async def _create_key(page: Page, name: str, group: str | None = None) -> str:
    await page.locator("#create-key input[name=name]").fill(name)
    if group:
        option = page.locator("#create-key select[name=group_id] option", has_text=group)
        value = await option.get_attribute("value")
        await page.locator("#create-key select[name=group_id]").select_option(value)
    await page.locator("#create-key button[type=submit]").click()
    secret = (await page.locator("#new-key").inner_text()).strip()
    assert secret.startswith("tg_"), secret
    await page.get_by_role("button", name="I have stored it").click()
    return secret


async def test_an_admin_key_grants_models_and_groups_in_the_keys_page(
    browser: Browser, http: httpx.AsyncClient, config: StackConfig, sim_models: list[str]
) -> None:
    assert {"sim-chat", "sim-chat-nousage"} <= set(sim_models)
    gateway_url = str(http.base_url).rstrip("/")
    context, page, watch = await sign_in_with_key(browser, gateway_url, config.admin_api_key)
    await open_page(page, watch, "keys", "Keys")
    await expect(page.locator("#groups h2")).to_have_text("Groups")
    tag = uuid.uuid4().hex[:6]

    # a key granted one model: it lists and may call only that one
    name = f"granted-{tag}"
    secret = await _create_key(page, name)
    assert {"sim-chat", "sim-chat-nousage"} <= await _visible_models(http, secret)
    await page.locator(f'button[data-models="{name}"]').click()
    await expect(page.locator("#key-restricted")).to_contain_text("Unrestricted")
    await page.locator("#grant-model").fill("sim-chat")
    await page.locator("#grant-key-model button[type=submit]").click()
    await expect(page.locator("#key-restricted")).to_contain_text("Restricted")
    await expect(page.locator("#key-models table")).to_contain_text("sim-chat")
    refused = await _refused(http, secret, "sim-chat-nousage")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed", refused.text
    assert await _visible_models(http, secret) == {"sim-chat"}
    watch.check("Keys (model grant)")
    await shot(page, "25-keys-model-grants")

    # a group with a model, and a key made in it: the group's grant binds the key
    group = f"console-group-{tag}"
    await page.locator("#save-group input[name=name]").fill(group)
    await page.locator("#save-group button[type=submit]").click()
    await expect(page.locator("#group-models h3")).to_contain_text(group)
    await page.locator("#group-model").fill("sim-chat")
    await page.locator("#grant-group-model button[type=submit]").click()
    await expect(page.locator("#group-models table")).to_contain_text("sim-chat")
    member = f"in-group-{tag}"
    member_secret = await _create_key(page, member, group=group)
    await expect(page.locator("main table").first).to_contain_text(group)
    refused = await _refused(http, member_secret, "sim-chat-nousage")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed", refused.text
    assert await _visible_models(http, member_secret) == {"sim-chat"}
    watch.check("Keys (group)")
    await shot(page, "26-keys-groups")

    # editing what the admin route allows: the month quota
    await page.locator(f'button[data-edit="{member}"]').click()
    await page.locator("#edit-key input[name=month_quota]").fill("3")
    await page.locator("#edit-key button[type=submit]").click()
    await expect(page.locator("#keys-status .notice.ok")).to_contain_text(f"“{member}” was saved")
    listed = await http.get(
        "/admin/api-key/list?limit=100&q=" + member,
        headers={"Authorization": f"Bearer {config.admin_api_key}"},
    )
    assert [k["month_quota"] for k in listed.json()["data"] if k["name"] == member] == [3.0], listed.text

    # a group still holding an active key is not deleted: said in plain words
    delete = page.locator(f'button[data-delete-group="{group}"]')
    await delete.click()
    await delete.click()
    refusal = page.locator("#keys-status .notice.error")
    await expect(refusal).to_contain_text("Active keys are still in this group")
    _expected_refusal(watch, 409)
    watch.check("Keys (edit, refusal)")
    await shot(page, "27-keys-edit-and-refusal")
    await context.close()
