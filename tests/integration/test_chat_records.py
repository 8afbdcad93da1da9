"""Chat records on the real stack (issue 14, item 1; docs/chat-records.md): the gateway hands
recorded chats to Kafka, analytics stores them (content encrypted) under the client's session and
the conversation's thread, and seed 004's admin and user routes show them to the right people only.
Recording off stores nothing; deletion, whole-organisation purge and retention remove records."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, SignedIn, service_db, sign_up, wait_until

MODEL = "sim-chat"


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


def _h(key: str, session: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}", **extra}
    if session is not None:
        headers["X-Session-Id"] = session
    return headers


def _chat(http: httpx.Client, key: str, session: str | None, messages: list[dict[str, str]]) -> str:
    resp = http.post(
        "/v1/chat/completions",
        json={"model": MODEL, "messages": messages, "max_tokens": 16},
        headers=_h(key, session),
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["choices"][0]["message"]["content"])


def _stream(http: httpx.Client, key: str, session: str, messages: list[dict[str, str]]) -> str:
    parts: list[str] = []
    body = {"model": MODEL, "messages": messages, "max_tokens": 16, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body, headers=_h(key, session)) as resp:
        assert resp.status_code == 200, resp.read()
        for line in resp.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunk = orjson.loads(line[6:])
                for choice in chunk.get("choices") or []:
                    parts.append(choice.get("delta", {}).get("content") or "")
    return "".join(parts)


def _set_recording(http: httpx.Client, key: str, org_id: str | None, **values: Any) -> dict[str, Any]:
    body = {**({"org_id": org_id} if org_id else {}), **values}
    resp = http.post("/admin/org/chat-recording", json=body, headers=_h(key))
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _sessions(
    http: httpx.Client, key: str, route: str = "/user/session/list", **params: Any
) -> dict[str, Any]:
    resp = http.get(route, params={"limit": 100, **params}, headers=_h(key))
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _session_named(
    http: httpx.Client, key: str, external: str, entries: int = 1, route: str = "/user/session/list"
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found = [s for s in _sessions(http, key, route)["data"] if s["session_id"] == external]
        return found[0] if found and found[0]["entry_count"] >= entries else None

    return wait_until(probe, timeout=30, what=f"session {external} with {entries} entries")


def _openai_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert {"message", "type", "code"} <= set(error), error
    return dict(error)


def _recording_on(http: httpx.Client, key: str, session_prefix: str) -> None:
    """Sends chats until one is recorded: the gateway's cached principal follows the setting once
    auth's announcement reaches it (well under a second)."""
    attempt = iter(range(1000))

    def probe() -> bool:
        external = f"{session_prefix}-{next(attempt)}"
        _chat(http, key, external, [{"role": "user", "content": "warm-up"}])
        try:
            _session_named(http, key, external)
        except AssertionError:
            return False
        return True

    wait_until(probe, timeout=60, what="recording to take effect")


@pytest.fixture
def recorded(new_account: Callable[..., Account], admin: httpx.Client, http: httpx.Client) -> Account:
    """A funded personal account whose organisation records full content."""
    account = new_account(credits=1)
    setting = _set_recording(http, admin.headers["Authorization"][7:], account.org_id, mode="full")
    assert setting == {"org_id": account.org_id, "mode": "full", "retention_days": 30}
    _recording_on(http, account.key, f"warm-{uuid.uuid4().hex[:6]}")
    return account


def test_streamed_and_plain_chats_land_in_their_session_and_thread(
    recorded: Account, http: httpx.Client, config: StackConfig
) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    first = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me about otters"}]
    answer1 = _chat(http, recorded.key, session, first)
    follow_up = [*first, {"role": "assistant", "content": answer1}, {"role": "user", "content": "And seals?"}]
    answer2 = _chat(http, recorded.key, session, follow_up)
    other = [{"role": "user", "content": "Streaming question about kiwis"}]
    streamed = _stream(http, recorded.key, session, other)
    assert streamed

    found = _session_named(http, recorded.key, session, entries=3)
    assert found["thread_count"] == 2 and found["title"] == "Tell me about otters"
    detail = http.get(f"/user/session/detail/{found['id']}", headers=_h(recorded.key))
    assert detail.status_code == 200, detail.text
    threads = {t["title"]: t for t in detail.json()["threads"]}
    assert set(threads) == {"Tell me about otters", "Streaming question about kiwis"}

    otters = http.get(
        f"/user/thread/detail/{threads['Tell me about otters']['id']}", headers=_h(recorded.key)
    )
    assert otters.status_code == 200, otters.text
    entries = otters.json()["entries"]
    assert [e["answer"] for e in entries] == [answer1, answer2]
    assert [e["stream"] for e in entries] == [False, False]
    assert entries[0]["messages"] == first and entries[1]["messages"] == follow_up
    assert all(e["prompt_tokens"] > 0 and e["completion_tokens"] > 0 for e in entries)

    kiwis = http.get(
        f"/user/thread/detail/{threads['Streaming question about kiwis']['id']}", headers=_h(recorded.key)
    )
    (entry,) = kiwis.json()["entries"]
    assert entry["stream"] is True and entry["answer"] == streamed and entry["messages"] == other
    assert entry["status"] == "ok"

    listed = http.get("/user/thread/list", params={"session_id": found["id"]}, headers=_h(recorded.key))
    assert listed.json()["total"] == 2

    # at rest: nothing readable
    with service_db(config, "analytics") as conn:
        rows = conn.execute(
            "SELECT e.messages_enc, e.answer_enc, t.title_enc FROM chat_entries e "
            "JOIN chat_threads t ON t.id = e.thread_id WHERE e.org_id = %s",
            (recorded.org_id,),
        ).fetchall()
    stored = " ".join(str(v) for row in rows for v in row)
    assert rows and "otters" not in stored and "kiwis" not in stored and answer1 not in stored


def test_recording_off_stores_nothing(
    new_account: Callable[..., Account], admin: httpx.Client, http: httpx.Client, config: StackConfig
) -> None:
    account = new_account(credits=1)
    off_session = f"off-{uuid.uuid4().hex[:8]}"
    _chat(http, account.key, off_session, [{"role": "user", "content": "not recorded"}])
    # metadata mode: who, when, which model; no content. The org's records are one partition's, in
    # order: once a later record is stored, the earlier unrecorded chat would have been too.
    _set_recording(http, admin.headers["Authorization"][7:], account.org_id, mode="metadata")
    _recording_on(http, account.key, f"meta-{uuid.uuid4().hex[:6]}")
    listed = _sessions(http, account.key)["data"]
    assert off_session not in {s["session_id"] for s in listed}
    assert all(s["title"] is None for s in listed)
    with service_db(config, "analytics") as conn:
        count = conn.execute(
            "SELECT count(*) FROM chat_sessions WHERE external_id = %s", (off_session,)
        ).fetchone()
        contents = conn.execute(
            "SELECT count(*) FROM chat_entries WHERE org_id = %s"
            " AND (messages_enc IS NOT NULL OR answer_enc IS NOT NULL)",
            (account.org_id,),
        ).fetchone()
    assert count == (0,) and contents == (0,)


@dataclass(frozen=True)
class Team:
    org: str
    owner: SignedIn
    owner_key: dict[str, Any]
    member_key: dict[str, Any]


def _team(http: httpx.Client, admin_key: str) -> Team:
    owner, member = sign_up(http), sign_up(http)
    made = http.post("/auth/orgs", json={"name": "Records"}, headers=_h(owner.access_token))
    assert made.status_code == 201, made.text
    org = str(made.json()["id"])
    added = http.post(
        f"/auth/orgs/{org}/members",
        json={"email": member.email, "role": "member"},
        headers=_h(owner.access_token),
    )
    assert added.status_code == 201, added.text
    keys = []
    for who in (owner, member):
        resp = http.post(
            "/auth/api-keys", json={"name": "k"}, headers=_h(who.access_token, **{"Swarms-Organization": org})
        )
        assert resp.status_code == 201, resp.text
        keys.append(dict(resp.json()))
    recharge = http.post(
        "/admin/api-key/recharge", json={"api_key": keys[0]["api_key"], "balance": 1}, headers=_h(admin_key)
    )
    assert recharge.status_code == 200, recharge.text
    return Team(org, owner, keys[0], keys[1])


def test_visibility_search_paging_and_deletion(
    admin: httpx.Client, http: httpx.Client, new_account: Callable[..., Account]
) -> None:
    team = _team(http, admin.headers["Authorization"][7:])
    ada, bob = team.owner_key["api_key"], team.member_key["api_key"]
    # the organisation's owner turns recording on (audited, announced to the gateways)
    assert _set_recording(http, ada, None, mode="full", retention_days=7)["retention_days"] == 7
    _openai_error(http.post("/admin/org/chat-recording", json={"mode": "off"}, headers=_h(bob)), 403)
    _recording_on(http, bob, "bob-warm")
    _recording_on(http, ada, "ada-warm")
    titles = ["alpha apples", "beta bananas", "alpha apricots"]
    for i, title in enumerate(titles):
        _chat(http, bob, f"bob-{i}", [{"role": "user", "content": title}])
    _chat(http, ada, "ada-0", [{"role": "user", "content": "alpha from ada"}])
    bobs = _session_named(http, bob, "bob-2")
    adas = _session_named(http, ada, "ada-0")

    # a member sees their own; the owner their organisation's, filtered by key on request
    mine = {s["session_id"] for s in _sessions(http, bob)["data"]}
    assert {"bob-0", "bob-1", "bob-2"} <= mine and "ada-0" not in mine
    everyone = {s["session_id"] for s in _sessions(http, ada, "/admin/session/list")["data"]}
    assert {"bob-0", "ada-0"} <= everyone
    by_key = _sessions(http, ada, "/admin/session/list", key_id=team.member_key["id"])["data"]
    assert {s["key_id"] for s in by_key} == {team.member_key["id"]}
    _openai_error(http.get("/admin/session/list", headers=_h(bob)), 403)
    _openai_error(http.get(f"/user/session/detail/{adas['id']}", headers=_h(bob)), 404)

    # another organisation: 404, whatever its role there
    stranger = new_account(credits=0)
    for path in (
        f"/user/session/detail/{bobs['id']}",
        f"/admin/session/detail/{bobs['id']}",
        f"/user/thread/detail/{bobs['id']}",
    ):
        _openai_error(http.get(path, headers=_h(stranger.key)), 404)
    assert bobs["id"] not in {s["id"] for s in _sessions(http, stranger.key, "/admin/session/list")["data"]}
    _openai_error(http.delete(f"/admin/session/{bobs['id']}", headers=_h(stranger.key)), 404)

    # q searches titles (decrypted) and session ids; paging over the matches
    alpha = _sessions(http, bob, q="ALPHA")
    assert alpha["total"] == 2 and {s["title"] for s in alpha["data"]} == {"alpha apples", "alpha apricots"}
    page = http.get(
        "/user/session/list", params={"q": "alpha", "limit": 1, "offset": 1}, headers=_h(bob)
    ).json()
    assert page["total"] == 2 and len(page["data"]) == 1 and page["data"][0]["title"] == "alpha apples"
    assert _sessions(http, bob, q="bob-1")["data"][0]["title"] == "beta bananas"
    threads = http.get("/admin/thread/list", params={"q": "alpha", "limit": 10}, headers=_h(ada)).json()
    assert {t["title"] for t in threads["data"]} == {"alpha apples", "alpha apricots", "alpha from ada"}
    plain = http.get("/user/session/list", params={"limit": 2, "offset": 0}, headers=_h(bob)).json()
    assert len(plain["data"]) == 2 and plain["total"] >= 4 and plain["limit"] == 2
    _openai_error(http.get("/user/session/list", params={"limit": 0}, headers=_h(bob)), 400)

    # deletion on request: the member's own session, then the whole organisation
    deleted = http.delete(f"/user/session/{bobs['id']}", headers=_h(bob))
    assert deleted.status_code == 200 and deleted.json() == {"id": bobs["id"], "deleted": True}
    _openai_error(http.get(f"/user/session/detail/{bobs['id']}", headers=_h(bob)), 404)
    _openai_error(http.delete(f"/user/session/{adas['id']}", headers=_h(bob)), 404)
    purged = http.post("/admin/session/purge", json={}, headers=_h(ada))
    assert purged.status_code == 200 and purged.json()["sessions"] >= 4, purged.text
    assert _sessions(http, ada, "/admin/session/list")["total"] == 0

    audit = http.get("/admin/audit/list", params={"limit": 100}, headers=_h(ada)).json()["data"]
    assert any(a["action"] == "org.chat_recording" for a in audit)


def test_retention_removes_expired_records(
    recorded: Account, admin: httpx.Client, http: httpx.Client, config: StackConfig
) -> None:
    old, fresh = f"old-{uuid.uuid4().hex[:6]}", f"new-{uuid.uuid4().hex[:6]}"
    _chat(http, recorded.key, old, [{"role": "user", "content": "old news"}])
    _chat(http, recorded.key, fresh, [{"role": "user", "content": "fresh news"}])
    old_session = _session_named(http, recorded.key, old)
    _session_named(http, recorded.key, fresh)
    with service_db(config, "analytics") as conn:  # backdated past the organisation's 30 days
        conn.execute(
            "UPDATE chat_entries SET created_at = now() - interval '31 days' "
            "WHERE thread_id IN (SELECT id FROM chat_threads WHERE session_id = %s)",
            (old_session["id"],),
        )
    _openai_error(http.post("/admin/session/retention/run", headers=_h(recorded.key)), 403)
    run = admin.post("/admin/session/retention/run")
    assert run.status_code == 200 and run.json()["entries"] >= 1, run.text
    left = {s["session_id"] for s in _sessions(http, recorded.key)["data"]}
    assert fresh in left and old not in left
