"""The console's organisation switch, in a real browser (Debian's Chromium under Playwright) against
the real stack.

Person A creates a team organisation (funded with nothing) and invites person B, who accepts (over
HTTP). B signs in with email and password, switches to the team in the top bar and acts there as a
member (Overview, Credits, Keys: a key made on the Keys page belongs to the team), then switches
back to the personal organisation. Switching to an organisation B does not belong to is refused.
Screenshots 60-69.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from console_support import (
    LAPTOP,
    PHONE,
    SETTLE_MS,
    ConsoleWatch,
    browser,
    console_bearer,
    http,
    open_page,
    shot,
)
from playwright.async_api import Browser, Page, expect

__all__ = ["browser", "http"]  # fixtures, imported for pytest
PASSWORD = "a long enough password"


@pytest.fixture(autouse=True)
def _patient_expect() -> Iterator[None]:
    """Two shared cores and argon2: give each expectation 15 s here, and restore Playwright's 5 s."""
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=5_000)


async def _register(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    email = f"switch-{uuid.uuid4().hex[:10]}@example.com"
    made = await http.post("/auth/register", json={"email": email, "password": PASSWORD, "name": name})
    assert made.status_code == 201, made.text
    bearer = {"Authorization": f"Bearer {made.json()['access_token']}"}
    return {**made.json(), "email": email, "bearer": bearer}


async def _me(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await http.get("/auth/me", headers=headers)


async def _switch_to(page: Page, watch: ConsoleWatch, org_id: str, org_name: str) -> None:
    await page.locator("#org-select").select_option(org_id)
    await page.locator("#org-switch button[type=submit]").click()
    await expect(page.locator("#who")).to_contain_text(org_name)
    await expect(page.locator("#org-switch button[type=submit]")).to_have_text("Switch")
    await expect(page.locator("main .loading")).to_have_count(0, timeout=SETTLE_MS)
    watch.check(f"switched to {org_name}")


async def test_a_member_switches_to_the_team_organisation_and_back(
    browser: Browser, http: httpx.AsyncClient
) -> None:
    # A creates a team organisation and invites B; B accepts over HTTP.
    owner, member = await _register(http, "Ann Owner"), await _register(http, "Ben Member")
    team = f"Switch Team {uuid.uuid4().hex[:6]}"
    made = await http.post("/auth/orgs", json={"name": team}, headers=owner["bearer"])
    assert made.status_code == 201, made.text
    team_id = made.json()["id"]
    invited = await http.post(
        f"/auth/orgs/{team_id}/invitations", json={"email": member["email"]}, headers=owner["bearer"]
    )
    assert invited.status_code == 201, invited.text
    accepted = await http.post(
        "/auth/invitations/accept", json={"token": invited.json()["token"]}, headers=member["bearer"]
    )
    assert accepted.status_code == 200, accepted.text
    orgs = (await http.get("/auth/orgs", headers=member["bearer"])).json()["data"]
    personal = next(o for o in orgs if o["personal"])
    assert {o["id"] for o in orgs} == {personal["id"], team_id}

    # B signs in with email and password: the personal organisation, the switch offers both.
    gateway_url = str(http.base_url).rstrip("/")
    context = await browser.new_context(viewport=LAPTOP, base_url=gateway_url)
    page = await context.new_page()
    watch = ConsoleWatch(page)
    await page.goto("/console/")
    await page.locator("#signin-form input[name=email]").fill(member["email"])
    await page.locator("#signin-form input[name=password]").fill(PASSWORD)
    await page.locator("#signin-form input[name=password]").press("Enter")
    await expect(page.locator("main h1")).to_have_text("Overview", timeout=SETTLE_MS)
    await expect(page.locator("main .loading")).to_have_count(0, timeout=SETTLE_MS)
    await expect(page.locator("#org-switch")).to_be_visible()
    await expect(page.locator("#org-select option")).to_have_count(2)
    await expect(page.locator("#org-select")).to_have_value(personal["id"])
    await expect(page.locator("#who")).to_contain_text(personal["name"])
    watch.check("Overview (personal)")
    personal_bearer = await console_bearer(page)

    # Switch to the team: its name and B's role in the top bar, a new session in the team.
    await _switch_to(page, watch, team_id, team)
    await expect(page.locator("#who")).to_contain_text("member")
    await expect(page.locator("main h1")).to_have_text("Overview")
    await shot(page, "60-switch-overview-team")
    team_bearer = await console_bearer(page)
    assert team_bearer != personal_bearer
    me = (await _me(http, team_bearer)).json()
    assert me["organization"]["id"] == team_id and me["organization"]["role"] == "member"
    old = await _me(http, personal_bearer)  # the session B switched from has ended
    assert old.status_code == 401 and old.json()["error"]["details"]["reason"] == "session_revoked", old.text
    # the model routes take the team session too (the gateway's principal is the team's)
    models = await http.get("/v1/models", headers=team_bearer)
    assert models.status_code == 200, models.text

    # A member's view of the team: Credits (nothing funded) and Keys, where a key is made in the team.
    await open_page(page, watch, "credits", "Credits")
    await shot(page, "61-switch-credits-team")
    await open_page(page, watch, "keys", "Keys")
    await expect(page.locator("main .empty")).to_contain_text("No keys yet")
    await page.locator("#create-key input[name=name]").fill("team laptop")
    await page.locator("#create-key button[type=submit]").click()
    secret = (await page.locator("#new-key").inner_text()).strip()
    assert secret.startswith("tg_"), secret
    await expect(page.locator("main table")).to_contain_text("team laptop")
    watch.check("Keys (team)")
    await shot(page, "62-switch-keys-team")
    key_me = (await _me(http, {"Authorization": f"Bearer {secret}"})).json()
    assert key_me["organization"]["id"] == team_id and key_me["auth"] == "api_key", key_me
    team_keys = (await http.get("/auth/api-keys", headers=team_bearer)).json()["data"]
    assert [k["name"] for k in team_keys] == ["team laptop"] and team_keys[0]["org_id"] == team_id

    # At a phone's width the switch sits on its own row, and nothing is wider than the screen.
    await page.set_viewport_size(PHONE)
    await expect(page.locator("#org-select")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await shot(page, "63-switch-phone")
    await page.set_viewport_size(LAPTOP)

    # Back to the personal organisation: the Keys page stays, and lists that organisation's keys.
    await _switch_to(page, watch, personal["id"], personal["name"])
    await expect(page.locator("main h1")).to_have_text("Keys")
    await expect(page.locator("main .empty")).to_contain_text("No keys yet")
    await expect(page.locator("main table")).to_have_count(0)
    watch.check("Keys (personal again)")
    await shot(page, "64-switch-back-personal")
    back_bearer = await console_bearer(page)
    assert (await _me(http, back_bearer)).json()["organization"]["id"] == personal["id"]
    assert (await _me(http, team_bearer)).status_code == 401

    # An organisation B is not a member of: refused, the same whether it exists or not.
    refusals = []
    for other in (owner["user"]["org_id"], f"org_{uuid.uuid4().hex}"):
        resp = await http.post(
            "/auth/switch-organization", json={"organization_id": other}, headers=back_bearer
        )
        assert resp.status_code == 403, resp.text
        refusals.append((resp.json()["error"]["message"], resp.json()["error"]["details"]))
    assert refusals[0] == refusals[1] and refusals[0][1]["reason"] == "not_a_member"
    assert (await _me(http, back_bearer)).status_code == 200  # a refusal ends nothing
    # an API key never switches, not even into its own user's other organisation
    keyed = await http.post(
        "/auth/switch-organization",
        json={"organization_id": personal["id"]},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert keyed.status_code == 403 and keyed.json()["error"]["details"]["reason"] == "organization_mismatch"
    watch.check("after the refusals")  # made over HTTP: nothing reached the page
    await context.close()
