// Chat records (seed 004's sessions and threads, docs/chat-records.md): what was asked through
// /v1/chat/completions and answered, where the organisation records chats. A person sees their own
// (/user/*); an organisation's owner or admin, or a platform admin, the organisation's (/admin/*),
// with a key filter; search (q), paging, a session's threads, a thread's entries, deletion; and the
// recording setting for those who may change it. The state lives in the hash (#/records?view=…).
import { api, ApiError, withKey } from "../api.js";
import { busy, empty, h, int, notice, secondPress, table, when } from "../ui.js";

export const title = "Chat records";
const LIMIT = 10;
// A key a password session made to reach the recording setting (API keys only): this tab's memory only.
const settingKeys = new Map();
const MODES = [["off", "off: nothing is recorded"], ["metadata", "metadata: who, when, model, tokens"], ["full", "full: also the messages and answers"]];

export async function render(root, ctx) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  // decided from /auth/me (no probe of a route that would refuse): analytics' /admin/* takes a platform
  // admin key or an organisation's owner or admin (password or key) whose credential may read
  const key = ctx.me.key || null;
  const mayRead = !key || key.permissions.includes("read");
  const canAdmin = mayRead && (ctx.isPlatformAdmin || ctx.orgRole === "owner" || ctx.orgRole === "admin");
  const scope = canAdmin && params.get("scope") !== "user" ? "admin" : "user";
  const go = (changes) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === undefined || v === "") next.delete(k);
      else next.set(k, String(v));
    }
    location.hash = `#/records?${next}`;
  };
  const status = h("div", { id: "rec-status", "aria-live": "polite" });
  const recording = await recordingPanel(ctx, params, go);
  const body = h("div", { id: "rec-body" });
  root.replaceChildren(
    h("p", { class: "muted" }, scope === "admin"
      ? (ctx.isPlatformAdmin ? "Every organisation's chat records (platform admin)." : "Your organisation's chat records.")
      : "Your own chat records: the chats your keys sent while your organisation recorded them."),
    recording.node, status, body,
    scope === "admin" ? purgePanel(ctx, params, status) : null);
  const base = `/${scope}`;
  const id = params.get("session") || params.get("thread");
  if (params.get("session")) await sessionView(body, base, id, go, status);
  else if (params.get("thread")) await threadView(body, base, id, go, status);
  else await listView(body, base, scope, canAdmin, params, go, status, recording.setting);
}

// The organisation's recording setting: shown and editable where GET/POST /admin/org/chat-recording
// answer (a team organisation's owner or admin key; a platform admin key names the organisation).
async function recordingPanel(ctx, params, go) {
  // auth's /admin/org/chat-recording takes API keys only: a platform admin's (naming the organisation)
  // or a team organisation's owner's or admin's (its own)
  const orgId = params.get("org") || "";
  const mayEdit = ctx.kind === "key" && (ctx.isPlatformAdmin || ctx.managesOrgKeys);
  const org0 = ctx.me.organization;
  // a password session of a team organisation's owner or admin reaches it through a key of its own
  const viaKey = ctx.kind === "token" && org0 && !org0.personal && (ctx.orgRole === "owner" || ctx.orgRole === "admin");
  if (viaKey && !settingKeys.has(ctx.orgId)) return { setting: null, node: settingKeyOffer(ctx) };
  const settingKey = viaKey ? settingKeys.get(ctx.orgId) : null;
  const call = (path, options) => (settingKey ? withKey(settingKey, path, options) : api(path, options));
  if (!mayEdit && !viaKey) {
    return { setting: null, node: h("p", { class: "muted", id: "rec-who-sets" },
      "Recording is set per organisation (off by default) by a platform admin or with the API key of a team organisation's owner or admin.") };
  }
  let setting = null;
  let failed = null;
  if (!ctx.isPlatformAdmin || orgId) {
    try {
      setting = await call(`/admin/org/chat-recording${orgId ? `?org_id=${encodeURIComponent(orgId)}` : ""}`);
    } catch (err) {
      failed = err.message;
    }
  }
  const org = h("input", { name: "org_id", id: "rec-org", value: orgId, placeholder: "org_…", required: true });
  const mode = h("select", { name: "mode", id: "rec-mode" }, MODES.map(([v, label]) => h("option", { value: v }, label)));
  const days = h("input", { type: "number", name: "retention_days", id: "rec-days", min: 1, max: 3650, required: true });
  const save = h("button", { type: "submit", id: "rec-save" }, "Save");
  const said = h("div", { "aria-live": "polite" });
  const current = h("p", { id: "rec-current" });
  const showSetting = (s) => {
    mode.value = s.mode;
    days.value = s.retention_days;
    current.replaceChildren("Recording for ", h("code", {}, s.org_id), " is ", h("strong", { "data-mode": s.mode }, s.mode),
      `, kept ${s.retention_days} days.`);
  };
  const form = h("form", { class: "row", id: "rec-form", onsubmit: async (e) => {
    e.preventDefault();
    const body = { mode: mode.value, retention_days: Number(days.value) };
    if (ctx.isPlatformAdmin) body.org_id = org.value.trim();
    try {
      setting = await busy(save, "Saving…", () => call("/admin/org/chat-recording", { method: "POST", body }));
      showSetting(setting);
      said.replaceChildren(notice("ok", `Saved. Chats sent from now on are recorded as “${setting.mode}”; existing records stay until deleted or past retention.`));
    } catch (err) {
      said.replaceChildren(notice("error", err.message));
    }
  } }, h("label", {}, "Recording", mode), h("label", {}, "Keep (days)", days), save);
  const node = h("section", { class: "panel rec-setting", "aria-labelledby": "rec-setting-title" },
    h("h2", { id: "rec-setting-title" }, "Recording setting"));
  if (ctx.isPlatformAdmin) {
    node.append(h("form", { class: "row", id: "rec-org-form", onsubmit: (e) => { e.preventDefault(); go({ org: org.value.trim() }); } },
      h("label", {}, "Organisation id", org), h("button", { type: "submit", class: "secondary" }, "Show its setting")));
  }
  if (setting) {
    showSetting(setting);
    node.append(current, form, said);
  } else if (failed) {
    node.append(notice("error", failed));
  }
  return { setting, node };
}

// The setting's routes take API keys only: a password session is offered a key of the person in
// this organisation (read and write, a day), made with POST /auth/api-keys as the Organisations page
// does for the audit log; it is listed with their keys, where it can be revoked sooner.
function settingKeyOffer(ctx) {
  const make = h("button", { type: "button", id: "rec-make-key" }, "Create a key for a day to read and change it");
  const said = h("div", { "aria-live": "polite" });
  make.addEventListener("click", async () => {
    try {
      const made = await busy(make, "Creating…", () => api("/auth/api-keys", {
        method: "POST", headers: { "Swarms-Organization": ctx.orgId },
        body: { name: "chat recording setting (console)", permissions: ["read", "write"], expires_days: 1 } }));
      settingKeys.set(ctx.orgId, made.api_key);
      window.dispatchEvent(new HashChangeEvent("hashchange")); // the router renders the page again, with the setting
    } catch (err) {
      said.replaceChildren(notice("error", err.message));
    }
  });
  return h("section", { class: "panel rec-setting", "aria-labelledby": "rec-setting-title" },
    h("h2", { id: "rec-setting-title" }, "Recording setting"),
    h("p", { class: "muted" }, "Recording is set per organisation (off by default). Its route, /admin/org/chat-recording, "
      + "takes an API key, not a password sign-in: the console can create a key of yours in this organisation "
      + "(read and write, expiring in a day, kept in this tab's memory only; revoke it sooner on the Keys page)."),
    make, said);
}

// The whole organisation's records deleted at once (POST /admin/session/purge): an organisation's
// owner or admin purges their own; a platform admin the organisation the setting panel names. Two
// steps: the first press says what will go, the second deletes.
function purgePanel(ctx, params, status) {
  const orgId = ctx.isPlatformAdmin ? params.get("org") : ctx.orgId;
  if (!orgId) return null;
  const name = ctx.isPlatformAdmin ? orgId : (ctx.me.organization ? ctx.me.organization.name : orgId);
  const start = h("button", { type: "button", class: "danger", id: "rec-purge" }, "Delete all of the organisation's chat records…");
  const box = h("section", { class: "panel rec-purge", "aria-labelledby": "rec-purge-title" },
    h("h2", { id: "rec-purge-title" }, "Delete every record"), start);
  start.addEventListener("click", () => {
    const confirm = h("button", { type: "button", class: "danger", id: "rec-purge-confirm" }, "Yes, delete them all");
    const keep = h("button", { type: "button", class: "secondary", onclick: () => box.replaceChildren(box.firstChild, start) }, "Keep them");
    confirm.addEventListener("click", async () => {
      try {
        const body = ctx.isPlatformAdmin ? { org_id: orgId } : {};
        const done = await busy(confirm, "Deleting…", () => api("/admin/session/purge", { method: "POST", body }));
        box.replaceChildren(box.firstChild, notice("ok", `Deleted ${int(done.sessions)} session(s) and ${int(done.entries)} entr${done.entries === 1 ? "y" : "ies"} of “${name}”.`));
        status.replaceChildren(notice("ok", "Every chat record of the organisation is deleted. Reload to see the empty list."));
      } catch (err) {
        box.replaceChildren(box.firstChild, notice("error", err instanceof ApiError && err.status === 403 ? `Not allowed: ${err.message}` : err.message), start);
      }
    });
    box.replaceChildren(box.firstChild, h("div", { class: "notice warn", role: "alert", id: "rec-purge-warning" },
      h("p", {}, `This deletes every chat record of “${name}” — all sessions, threads and entries of every key — and cannot be undone. `
        + "Recording stays as it is set: later chats are recorded again."),
      h("div", { class: "row" }, confirm, keep)));
    confirm.focus();
  });
  return box;
}

function pager(page, go) {
  const first = page.total ? page.offset + 1 : 0;
  const last = Math.min(page.offset + page.data.length, page.total);
  return h("div", { class: "row rec-pager" },
    h("span", { class: "muted", id: "rec-range" }, `${int(first)}–${int(last)} of ${int(page.total)}`),
    h("button", { type: "button", class: "secondary", disabled: page.offset === 0,
      onclick: () => go({ offset: Math.max(0, page.offset - page.limit) || null }) }, "Previous"),
    h("button", { type: "button", class: "secondary", disabled: last >= page.total,
      onclick: () => go({ offset: page.offset + page.limit }) }, "Next"));
}

async function listView(root, base, scope, canAdmin, params, go, status, setting) {
  const view = params.get("view") === "threads" ? "threads" : "sessions";
  const q = h("input", { type: "search", name: "q", id: "rec-q", value: params.get("q") || "", maxlength: 200,
    placeholder: view === "sessions" ? "title or session id" : "title or model" });
  const key = h("input", { type: "number", name: "key_id", id: "rec-key", min: 1, value: params.get("key_id") || "", placeholder: "any" });
  const session = h("input", { type: "number", name: "session_id", id: "rec-session", min: 1, value: params.get("session_id") || "", placeholder: "any" });
  const filters = h("form", { class: "row", id: "rec-filters", role: "search", onsubmit: (e) => {
    e.preventDefault();
    go({ q: q.value.trim(), key_id: scope === "admin" ? key.value : null, session_id: view === "threads" ? session.value : null, offset: null });
  } }, h("label", {}, "Search", q),
  scope === "admin" ? h("label", {}, "Key id", key) : null,
  view === "threads" ? h("label", {}, "Session (record id)", session) : null,
  h("button", { type: "submit" }, "Search"),
  h("button", { type: "button", class: "secondary", onclick: () => go({ q: null, key_id: null, session_id: null, offset: null }) }, "Clear"));
  const tab = (label, changes, on) => h("a", { href: "#", class: `tab${on ? " on" : ""}`, "aria-current": on ? "true" : null,
    onclick: (e) => { e.preventDefault(); go({ ...changes, offset: null, session_id: null }); } }, label);
  const tabs = h("div", { class: "row rec-tabs" },
    canAdmin ? tab("Organisation", { scope: null }, scope === "admin") : null,
    canAdmin ? tab("Mine", { scope: "user" }, scope === "user") : null,
    tab("Sessions", { view: null }, view === "sessions"), tab("Threads", { view: "threads" }, view === "threads"));
  const query = new URLSearchParams({ limit: LIMIT, offset: params.get("offset") || 0 });
  for (const name of ["q", "key_id", "session_id"]) if (params.get(name)) query.set(name, params.get(name));
  if (scope !== "admin") query.delete("key_id");
  if (view !== "threads") query.delete("session_id");
  const page = await api(`${base}/${view === "threads" ? "thread" : "session"}/list?${query}`);
  const open = (kind, row, text) => h("a", { href: "#", "data-open": `${kind}-${row.id}`,
    onclick: (e) => { e.preventDefault(); go({ [kind]: row.id }); } }, text);
  root.replaceChildren(tabs, filters);
  if (!page.total) {
    root.append(params.get("q") || params.get("key_id") || params.get("session_id")
      ? empty(`Nothing matches these filters. Search looks in titles and ${view === "sessions" ? "session ids" : "model names"}.`)
      : noRecords(setting));
    return;
  }
  const columns = view === "sessions" ? [
    { label: "Session", value: (s) => open("session", s, s.session_id) },
    { label: "Title", value: (s) => s.title || h("span", { class: "muted" }, "(no content recorded)") },
    scope === "admin" ? { label: "Key", value: (s) => s.key_id, num: true } : null,
    { label: "Threads", value: (s) => int(s.thread_count), num: true },
    { label: "Entries", value: (s) => int(s.entry_count), num: true },
    { label: "Last activity", value: (s) => when(s.updated_at) },
    { label: "", value: (s) => deleteButton(base, s, status, () => listView(root, base, scope, canAdmin, params, go, status, setting)) },
  ] : [
    { label: "Thread", value: (t) => open("thread", t, t.title || `#${t.id}`) },
    { label: "Model", value: (t) => t.model },
    { label: "Session", value: (t) => open("session", { id: t.session_id }, `#${t.session_id}`) },
    scope === "admin" ? { label: "Key", value: (t) => t.key_id, num: true } : null,
    { label: "Entries", value: (t) => int(t.entry_count), num: true },
    { label: "Last activity", value: (t) => when(t.updated_at) },
  ];
  root.append(table(columns.filter(Boolean), page.data), pager(page, go));
}

function noRecords(setting) {
  const off = !setting || setting.mode === "off";
  return h("div", { class: "empty", id: "rec-empty" },
    h("p", {}, off && setting ? "Recording is off for this organisation, so no chats are kept." : "No chat records yet."),
    h("p", {}, "Chats are recorded only where the organisation turned recording on (it is off by default): ",
      setting ? "choose “metadata” or “full” in the recording setting above and save" : "a team organisation's owner or admin, or a platform admin, sets it in this page or with POST /admin/org/chat-recording",
      ". Chats sent after that appear here, grouped by the X-Session-Id header."));
}

// two steps instead of a dialog: the first press asks, the second deletes the session's records
function deleteButton(base, session, status, after) {
  const button = h("button", { type: "button", class: "danger", "data-delete": session.id, "aria-label": `Delete session ${session.session_id}` }, "Delete");
  button.addEventListener("click", async () => {
    if (!secondPress(button, "Confirm delete")) return;
    try {
      await busy(button, "Deleting…", () => api(`${base}/session/${session.id}`, { method: "DELETE" }));
      status.replaceChildren(notice("ok", `Session “${session.session_id}” and its threads are deleted.`));
      after();
    } catch (err) {
      status.replaceChildren(notice("error", err instanceof ApiError && err.status === 403 ? `Not allowed: ${err.message}` : err.message));
    }
  });
  return button;
}

async function sessionView(root, base, id, go, status) {
  const s = await api(`${base}/session/detail/${encodeURIComponent(id)}`);
  root.replaceChildren(
    h("p", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); go({ session: null }); } }, "← All sessions")),
    h("h2", {}, "Session ", h("code", {}, s.session_id)),
    h("p", { class: "muted" }, `Key ${s.key_id} · ${int(s.thread_count)} thread(s), ${int(s.entry_count)} entr${s.entry_count === 1 ? "y" : "ies"} · started ${when(s.created_at)}, last ${when(s.updated_at)}`),
    h("div", { class: "row" }, deleteButton(base, s, status, () => go({ session: null }))),
    s.threads.length ? table([
      { label: "Thread", value: (t) => h("a", { href: "#", "data-open": `thread-${t.id}`, onclick: (e) => { e.preventDefault(); go({ session: null, thread: t.id }); } }, t.title || `#${t.id}`) },
      { label: "Model", value: (t) => t.model },
      { label: "Entries", value: (t) => int(t.entry_count), num: true },
      { label: "Last activity", value: (t) => when(t.updated_at) },
    ], s.threads) : empty("This session has no threads left."));
}

async function threadView(root, base, id, go) {
  const t = await api(`${base}/thread/detail/${encodeURIComponent(id)}`);
  root.replaceChildren(
    h("p", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); go({ thread: null, session: t.session_id }); } }, "← Its session"),
      " · ", h("a", { href: "#", onclick: (e) => { e.preventDefault(); go({ thread: null, view: "threads" }); } }, "All threads")),
    h("h2", {}, t.title || `Thread #${t.id}`),
    h("p", { class: "muted" }, `${t.model} · key ${t.key_id} · ${int(t.entry_count)} entr${t.entry_count === 1 ? "y" : "ies"}`),
    h("ol", { class: "rec-entries", id: "rec-entries" }, t.entries.map((e) => h("li", { class: "panel" },
      h("p", { class: "muted" }, `${when(e.created_at)} · ${e.model} · ${e.stream ? "streamed" : "not streamed"} · ${e.status} · ${int(e.prompt_tokens)} in, ${int(e.completion_tokens)} out tokens`),
      e.messages === null ? h("p", { class: "muted" }, "Metadata only: the content was not recorded.")
        : h("div", { class: "chat" },
          e.messages.map((m) => h("div", { class: `msg ${m.role === "user" ? "user" : ""}` }, h("strong", {}, `${m.role}: `), m.content)),
          e.answer !== null ? h("div", { class: "msg assistant" }, h("strong", {}, "answer: "), e.answer) : null)))));
}
