"""The console's Fine-tuning and Chat records pages in a real browser (Debian's Chromium under
Playwright) against the real stack.

Fine-tuning: a person uploads a JSONL file through the page (a bad line is named plainly), cannot
start a job without credits (the 402 in plain words), is funded and starts one, watches its loss
curve grow while it runs, sees it succeed with its model deployed, opens "Try it" (the Playground
with the fine-tuned model chosen) and chats with it; a second job is cancelled mid-run from the page.
The job is a small real one: a LoRA of the local Gemma 3 270M on 8 of the training tests'
examples, batch 2, one epoch (4 steps).

Chat records: a person sees the empty state; a platform admin turns full recording on for their
organisation in the page; a chat sent with the person's key shows up as a session and thread with
its content, is found by search, seen by the admin with a key filter, and deleted by the person.
Screenshots 30-39.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import httpx
import pytest
from console_support import (
    LAPTOP,
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
from playwright.async_api import TimeoutError as PlaywrightTimeout
from training_support import BASE, CHAT_LINES, jsonl

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account

__all__ = ["browser", "http"]  # fixtures, imported for pytest

JOB_MS = 900_000  # a real LoRA job on two shared cores: the page follows it as long as it takes
TRAIN_LINES = CHAT_LINES[:8]
ANSWER_MS = 180_000  # the local model applies the new adapter on its first request, on shared cores
STEPS = 4  # 8 examples, batch size 2, one epoch
BAD_LINES = [CHAT_LINES[0], json.dumps({"messages": [{"role": "user", "content": "no answer to learn"}]})]


def _expected_refusal(watch: ConsoleWatch, status: int) -> None:
    """A refusal the test asked for: the browser logs the failed load (one line per request); that
    line, and nothing else, is taken off the watch."""
    line = f"the server responded with a status of {status}"
    assert sum(line in e for e in watch.errors) == 1, watch.errors
    watch.errors = [e for e in watch.errors if line not in e]


async def _fits_a_phone(page: Page, where: str) -> None:
    """Nothing wider than a phone's screen, once the page (and Chart.js, on its resize observer) has
    laid itself out again at that width."""
    await page.set_viewport_size(PHONE)
    fits = f"document.documentElement.scrollWidth <= {PHONE['width']}"
    try:
        await page.wait_for_function(f"() => {fits}", timeout=5_000)
    except PlaywrightTimeout as exc:
        wide = await page.evaluate(
            f"""() => [...document.querySelectorAll("body *")]
                .filter((e) => e.getBoundingClientRect().right > {PHONE["width"]})
                .slice(0, 5).map((e) => `${{e.tagName}}#${{e.id}}.${{e.className}}`)"""
        )
        raise AssertionError(f"{where} scrolls sideways at {PHONE['width']} px: {wide}") from exc
    await page.set_viewport_size(LAPTOP)


async def _upload(page: Page, name: str, lines: list[str]) -> None:
    await page.locator("#ft-file-input").set_input_files(
        {"name": name, "mimeType": "application/jsonl", "buffer": jsonl(lines)}
    )
    await page.locator("#ft-upload button[type=submit]").click()


async def _start(page: Page, *, epochs: int, batch: int, suffix: str) -> None:
    await page.locator("#ft-model").select_option(BASE)
    await page.locator("#ft-create input[name=n_epochs]").fill(str(epochs))
    await page.locator("#ft-create input[name=batch_size]").fill(str(batch))
    await page.locator("#ft-create input[name=suffix]").fill(suffix)
    await page.locator("#ft-create button[type=submit]").click()


async def _points(page: Page) -> int:
    return int(await page.locator("#ft-curve").get_attribute("data-points") or "0")


@pytest.mark.timeout(1200)  # one real training job, however busy the machine is
async def test_a_person_fine_tunes_a_model_follows_it_live_and_tries_it(
    browser: Browser,
    http: httpx.AsyncClient,
    admin: httpx.Client,
    new_account: Callable[..., Account],
) -> None:
    account = new_account()  # no credits yet
    gateway_url = str(http.base_url).rstrip("/")
    bearer = {"Authorization": f"Bearer {account.key}"}
    context, page, watch = await sign_in_with_key(browser, gateway_url, account.key)

    await open_page(page, watch, "finetune", "Fine-tuning")
    await expect(page.locator("#ft-files .empty")).to_contain_text("No training files yet")
    await expect(page.locator("main .empty", has_text="No fine-tuning jobs yet")).to_be_visible()
    await shot(page, "30-finetune-empty")

    # a bad line is refused with its number, and nothing is stored
    await _upload(page, "bad.jsonl", BAD_LINES)
    refused = page.locator("#ft-upload-status .notice.error")
    await expect(refused).to_contain_text("line 2")
    await expect(refused).to_contain_text("assistant")
    _expected_refusal(watch, 400)
    assert (await http.get("/v1/files", headers=bearer)).json()["data"] == []
    await shot(page, "31-finetune-bad-file")

    # a good file; a job without credits is a plain 402, and nothing exists
    await _upload(page, "zorblax.jsonl", TRAIN_LINES)
    await expect(page.locator("#ft-upload-status .notice.ok")).to_contain_text("zorblax.jsonl")
    await expect(page.locator("#ft-files table")).to_contain_text("zorblax.jsonl")
    await _start(page, epochs=1, batch=2, suffix="console")
    await expect(page.locator("#ft-job-status .notice.error")).to_contain_text("Not enough credits")
    _expected_refusal(watch, 402)
    assert (await http.get("/v1/fine_tuning/jobs", headers=bearer)).json()["data"] == []
    watch.check("Fine-tuning (refusals)")

    # funded, the job starts and the page follows it live: points arrive while it runs
    funded = await asyncio.to_thread(
        admin.post, "/admin/api-key/recharge", json={"api_key": account.key, "balance": 1}
    )
    assert funded.status_code == 200, funded.text
    await page.locator("#ft-create button[type=submit]").click()
    await expect(page.locator("#ft-status [data-status]")).to_be_visible(timeout=SETTLE_MS)
    job_id = page.url.split("job=")[1]
    assert job_id.startswith("ftjob-"), page.url
    await page.wait_for_function(
        "() => document.querySelector('#ft-status [data-status]').dataset.status === 'running'"
        " && Number(document.querySelector('#ft-curve').dataset.points) >= 1",
        timeout=JOB_MS,
    )
    await expect(page.locator("#ft-step")).to_contain_text(f"/ {STEPS}")
    await expect(page.locator("#ft-cancel")).to_be_visible()
    # followed over the gateway's /ws (the CSP lets the same origin's ws:// through), not by polling
    await expect(page.locator("#ft-live")).to_have_attribute("data-live", "ws")
    await shot(page, "32-finetune-running")
    watch.check("Fine-tuning job (running)")

    await expect(page.locator('#ft-status [data-status="succeeded"]')).to_be_visible(timeout=JOB_MS)
    # while /ws is up the running job is read again only when a training event says it changed:
    # `succeeded` came from /ws's training_completed
    await expect(page.locator("#ft-live")).to_have_attribute("data-live", "ws")
    await expect(page.locator("#ft-live")).to_contain_text("followed over /ws")
    await expect(page.locator("#ft-curve")).to_have_attribute("data-points", str(STEPS), timeout=SETTLE_MS)
    await expect(page.locator("#ft-step")).to_have_text(f"{STEPS} / {STEPS}")
    await expect(page.locator("#ft-cancel")).to_have_count(0)
    events = (await http.get(f"/v1/fine_tuning/jobs/{job_id}/events?limit=1000", headers=bearer)).json()
    losses = {e["data"]["step"]: e["data"]["train_loss"] for e in events["data"] if "step" in e["data"]}
    assert sorted(losses) == list(range(1, STEPS + 1))
    shown = await page.locator("#ft-loss").inner_text()
    assert shown == f"{losses[STEPS]:.4f}", (shown, losses[STEPS])
    name = f"ft:{BASE}:{account.org_id}:console:{job_id}"
    await expect(page.locator("#ft-model-name")).to_have_text(name)
    await expect(page.locator('#ft-registry [data-registry="deployed"]')).to_be_visible(timeout=SETTLE_MS)
    await expect(page.locator("#ft-gateway")).to_have_text("yes", timeout=SETTLE_MS)
    await _fits_a_phone(page, "the job view")
    await shot(page, "33-finetune-succeeded")
    watch.check("Fine-tuning job (succeeded)")

    # "Try it": the Playground with the fine-tuned model chosen, and it answers
    await page.locator("#ft-try").click()
    await expect(page.locator("main h1")).to_have_text("Playground")
    await expect(page.locator("#pg-model")).to_have_value(name)
    await page.locator("#pg-form input[name=max_tokens]").fill("12")  # the local model on two cores
    await page.locator("#pg-prompt").fill("What is the mascot of Zorblax Cola?")
    await page.locator("#pg-prompt").press("Control+Enter")
    answer = page.locator("#pg-chat .msg.assistant")
    await expect(answer.locator(".answer")).not_to_be_empty(timeout=ANSWER_MS)
    await expect(answer.locator(".meta")).to_contain_text("tokens", timeout=ANSWER_MS)
    await shot(page, "34-playground-fine-tuned")
    watch.check("Playground (fine-tuned model)")

    # the list shows the job; a second one is cancelled from its page (at once: settled, nothing owed)
    await open_page(page, watch, "finetune", "Fine-tuning")
    await expect(page.locator(f'a[data-job="{job_id}"]')).to_be_visible()
    listed = page.locator("main table", has_text=job_id)
    await expect(listed.locator('[data-status="succeeded"]')).to_be_visible()
    await _start(page, epochs=3, batch=2, suffix="cancelled")
    await page.locator("#ft-cancel").click()
    await page.locator("#ft-cancel").click()  # the second press confirms
    await expect(page.locator('#ft-status [data-status="cancelled"]')).to_be_visible(timeout=SETTLE_MS)
    await expect(page.locator("#ft-notes .notice.ok")).to_contain_text("Cancelled")
    second = page.url.split("job=")[1]
    job = (await http.get(f"/v1/fine_tuning/jobs/{second}", headers=bearer)).json()
    assert job["status"] == "cancelled" and job["fine_tuned_model"] is None, job
    assert await _points(page) < 3 * STEPS  # stopped before its end
    watch.check("Fine-tuning job (cancelled)")
    await context.close()


async def _chat(http: httpx.AsyncClient, key: str, session: str, text: str) -> str:
    resp = await http.post(
        "/v1/chat/completions",
        json={"model": "sim-chat", "messages": [{"role": "user", "content": text}], "max_tokens": 16},
        headers={"Authorization": f"Bearer {key}", "X-Session-Id": session},
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["choices"][0]["message"]["content"])


async def _recorded_chat(http: httpx.AsyncClient, key: str, word: str) -> tuple[str, str]:
    """Chats until one is recorded (the gateway's cached principal follows the new setting once
    auth's announcement reaches it); answers the recorded session's id and its answer."""
    headers = {"Authorization": f"Bearer {key}"}
    for attempt in range(60):
        session = f"console-{word}-{attempt}"
        answer = await _chat(http, key, session, f"Tell me about the {word} please")
        for _ in range(10):
            listed = (await http.get("/user/session/list", params={"limit": 100}, headers=headers)).json()
            if any(s["session_id"] == session for s in listed["data"]):
                return session, answer
            await asyncio.sleep(0.5)
    raise AssertionError("no chat was recorded")


async def test_chat_records_are_shown_searched_and_deleted(
    browser: Browser,
    http: httpx.AsyncClient,
    config: StackConfig,
    new_account: Callable[..., Account],
    sim_models: list[str],
) -> None:
    account = new_account(credits=1)
    gateway_url = str(http.base_url).rstrip("/")
    word = f"zebra{uuid.uuid4().hex[:6]}"

    # the person: nothing recorded yet, and the page says why and who turns it on
    context, page, watch = await sign_in_with_key(browser, gateway_url, account.key)
    await open_page(page, watch, "records", "Chat records")
    await expect(page.locator("#rec-empty")).to_contain_text("off by default")
    await expect(page.locator("#rec-who-sets")).to_be_visible()
    await _fits_a_phone(page, "Chat records")
    await shot(page, "35-records-empty")

    # a platform admin turns full recording on for the person's organisation, in the page
    a_context, a_page, a_watch = await sign_in_with_key(browser, gateway_url, config.admin_api_key)
    await open_page(a_page, a_watch, "records", "Chat records")
    await a_page.locator("#rec-org").fill(account.org_id)
    await a_page.locator("#rec-org-form button[type=submit]").click()
    await expect(a_page.locator('#rec-current [data-mode="off"]')).to_be_visible()
    await a_page.locator("#rec-mode").select_option("full")
    await a_page.locator("#rec-save").click()
    await expect(a_page.locator(".rec-setting .notice.ok")).to_contain_text("full")
    await expect(a_page.locator('#rec-current [data-mode="full"]')).to_be_visible()
    setting = await http.get(
        "/admin/org/chat-recording",
        params={"org_id": account.org_id},
        headers={"Authorization": f"Bearer {config.admin_api_key}"},
    )
    assert setting.json()["mode"] == "full", setting.text
    await shot(a_page, "36-records-setting")
    a_watch.check("Chat records (admin, setting)")

    # a chat with the person's key is recorded; the person sees it, with its content
    session, answer = await _recorded_chat(http, account.key, word)
    await page.reload()  # the page is open already: a reload shows what arrived since
    await expect(page.locator("main .loading")).to_have_count(0, timeout=SETTLE_MS)
    row = page.locator("main table tr", has_text=session)
    await expect(row).to_contain_text(word)
    await page.locator("#rec-q").fill(word)
    await page.locator("#rec-q").press("Enter")
    await expect(page.locator("#rec-range")).to_have_text("1\N{EN DASH}1 of 1")
    await expect(row).to_be_visible()
    await shot(page, "37-records-search")
    await page.locator("#rec-q").fill(f"nothing-like-{word}")
    await page.locator("#rec-q").press("Enter")
    await expect(page.locator("main .empty")).to_contain_text("Nothing matches")
    await page.get_by_role("button", name="Clear").click()
    await row.get_by_role("link", name=session).click()
    await expect(page.locator("main h2", has_text="Session")).to_contain_text(session)
    await page.locator("main table a[data-open^=thread-]").first.click()
    entries = page.locator("#rec-entries")
    await expect(entries).to_contain_text(f"Tell me about the {word} please")
    await expect(entries).to_contain_text(answer)
    await expect(entries).to_contain_text("sim-chat")
    await shot(page, "38-records-thread")
    watch.check("Chat records (thread)")

    # the admin finds it by the person's key
    await a_page.locator("#rec-key").fill(str(account.key_id))
    await a_page.locator("#rec-key").press("Enter")
    await expect(a_page.locator("main table tr", has_text=session)).to_be_visible()
    await expect(a_page.locator("#rec-range")).to_contain_text("of ")
    await shot(a_page, "39-records-admin")
    a_watch.check("Chat records (admin, by key)")
    await a_context.close()

    # the person deletes the session: gone from the page and from the route
    await open_page(page, watch, "records", "Chat records")
    delete = page.locator("main table tr", has_text=session).locator("button[data-delete]")
    await delete.click()
    await expect(delete).to_have_text("Confirm delete")
    await delete.click()
    await expect(page.locator("#rec-status .notice.ok")).to_contain_text(session)
    await expect(page.locator("main table tr", has_text=session)).to_have_count(0)
    listed = await http.get(
        "/user/session/list", params={"limit": 100}, headers={"Authorization": f"Bearer {account.key}"}
    )
    assert session not in [s["session_id"] for s in listed.json()["data"]]
    watch.check("Chat records (deleted)")
    await context.close()
