// Organisations: the person's organisations (and creating one), accepting an invitation, and for a
// team organisation they manage: members and their roles, invitations (the token shown once) and the
// audit log. Only /auth/orgs/*, /auth/invitations/accept and /admin/audit/list (docs/identity.md).
import { api, currentSession, withKey } from "../api.js";
import { busy, empty, h, notice, secondPress, table, when } from "../ui.js";
import { limitsTable, plainLimit } from "./limits_view.js";

export const title = "Organisations";
export const allowed = (ctx) => ctx.hasUser; // organisations are people's: a user-less key has none

const AUDIT_ACTIONS = [
  "org.create", "member.add", "member.role", "member.remove", "member.leave", "invitation.create",
  "invitation.revoke", "invitation.accept", "user_api_key.create", "user_api_key.delete", "api_key.apply",
  "api_key.update", "api_key.delete", "api_key.secret", "group.save", "group.delete", "grant.authorize",
  "grant.deauthorize",
];

// The routes' stable codes (details.reason / code) in plain words; anything else keeps the route's message.
const PLAIN = {
  org_admin_required: "Only the organisation's owners and admins can do that.",
  owner_required: "Only an owner can make someone an owner, or change or remove an owner.",
  last_owner: "An organisation keeps at least one owner: make someone else an owner first.",
  personal_organization: "A personal organisation has no other members: create a team organisation to share.",
  not_a_member: "You are not a member of that organisation.",
  already_member: "That person is already a member.",
  user_not_found: "Nobody has an account with that email yet: send them an invitation instead.",
  member_not_found: "That person is no longer a member.",
  invitation_email_mismatch: "This invitation is for another email address: sign in as the person it was sent to.",
  invitation_not_found: "This invitation is unknown, already used or revoked.",
  invitation_expired: "This invitation has expired: ask for a new one.",
  admin_required: "The audit log is read with an API key of this organisation's owner or admin, or a platform admin key.",
  organization_mismatch: "That key belongs to another organisation.",
  permission_denied: "That key does not have the permission for this.",
};
export const plain = (err) => PLAIN[err.reason] || PLAIN[err.code] || err.message;

// the roles the caller may give: only an owner makes owners
const offered = (org) => (org.role === "owner" ? ["member", "admin", "owner"] : ["member", "admin"]);

// keys pasted or made for reading an organisation's audit log: this tab's memory only, never stored
const auditKeys = new Map();

function hashParam(name) {
  const query = location.hash.split("?")[1] || "";
  return new URLSearchParams(query).get(name);
}

export async function render(root, ctx) {
  const status = h("div", { "aria-live": "polite", id: "orgs-status" });
  const list = h("div");
  const detail = h("section", { id: "org-detail", "aria-live": "polite" });
  const say = (kind, text) => status.replaceChildren(notice(kind, text));
  root.replaceChildren(
    h("p", { class: "muted" }, "Your organisations and your role in each. A team organisation shares its credits, "
      + "keys and usage with its members; owners and admins manage who is in it."),
    h("div", { class: "orgs-forms" }, createForm(), acceptForm()), status,
    h("h2", {}, "Your organisations"), list, detail);
  let limitsBox = null; // the open organisation's rate limits, filled once a key for its admin routes is known
  let orgs = await loadOrgs();
  const wanted = hashParam("org");
  if (wanted && orgs.some((o) => o.id === wanted)) await open(orgs.find((o) => o.id === wanted));

  async function loadOrgs() {
    const rows = (await api("/auth/orgs")).data;
    list.replaceChildren(rows.length ? table([
      { label: "Name", value: (o) => o.name },
      { label: "Kind", value: (o) => (o.personal ? "personal" : "team") },
      { label: "Your role", value: (o) => h("span", { class: "badge" }, o.role) },
      { label: "Created", value: (o) => when(o.created_at) },
      { label: "", value: (o) => h("button", { type: "button", class: "secondary", "data-open": o.name,
        "aria-label": `Open ${o.name}`, onclick: () => open(o) }, "Open") },
    ], rows) : empty("No organisations."));
    return rows;
  }

  function createForm() {
    const name = h("input", { name: "name", required: true, maxlength: 100, placeholder: "e.g. Research team" });
    const submit = h("button", { type: "submit" }, "Create organisation");
    return h("form", { class: "row", id: "create-org", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const made = await busy(submit, "Creating…", () => api("/auth/orgs", { method: "POST", body: { name: name.value } }));
        name.value = "";
        say("ok", `Organisation “${made.name}” was created; you are its owner.`);
        orgs = await loadOrgs();
        await open(made);
      } catch (err) {
        say("error", plain(err));
      }
    } }, h("label", {}, "New team organisation", name), submit);
  }

  function acceptForm() {
    const token = h("input", { name: "token", required: true, maxlength: 256, placeholder: "inv_…", autocomplete: "off" });
    token.value = hashParam("invite") || "";
    const submit = h("button", { type: "submit" }, "Accept invitation");
    return h("form", { class: "row", id: "accept-invitation", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const joined = await busy(submit, "Accepting…", () => api("/auth/invitations/accept", {
          method: "POST", body: { token: token.value.trim() } }));
        token.value = "";
        const org = joined.organization;
        say("ok", `You joined “${org.name}” as ${org.role}.`);
        orgs = await loadOrgs();
      } catch (err) {
        say("error", plain(err));
      }
    } }, h("label", {}, "Invitation token", token), submit);
  }

  async function open(org) {
    detail.replaceChildren(h("h2", { id: "org-title" }, org.name), h("p", { class: "loading" }, "Loading…"));
    const manages = !org.personal && (org.role === "owner" || org.role === "admin");
    const parts = [h("h2", { id: "org-title" }, org.name),
      h("p", { class: "muted" }, `You are ${org.role} here. `, org.personal
        ? "This is your personal organisation: it has no other members (create a team organisation to share)."
        : manages ? "You manage its members and invitations." : "Its owners and admins manage its members.")];
    const members = h("div", { id: "members" });
    parts.push(h("h3", {}, "Members"), members);
    if (manages) parts.push(addMemberForm(org, () => showMembers(org, members)));
    const invites = h("div", { id: "invitations" });
    if (manages) parts.push(h("h3", {}, "Invitations"), inviteForm(org, invites), invites);
    // the organisation's rate limits (GET /admin/org/limits) are read with the audit log's key
    limitsBox = h("div", { id: "org-limits-box" }, h("p", { class: "muted" },
      "Read with the same key as the audit log: choose one above. A platform admin sets them."));
    if (manages) parts.push(h("h3", {}, "Audit log"), auditPanel(org), h("h3", {}, "Rate limits"), limitsBox);
    try {
      await showMembers(org, members);
      if (manages) await showInvitations(org, invites);
      detail.replaceChildren(...parts);
    } catch (err) {
      detail.replaceChildren(h("h2", {}, org.name), notice("error", plain(err)));
    }
  }

  async function showMembers(org, box) {
    const rows = (await api(`/auth/orgs/${org.id}/members`)).data;
    const me = ctx.me.user ? ctx.me.user.id : null;
    const manages = !org.personal && (org.role === "owner" || org.role === "admin");
    const lastOwner = rows.filter((m) => m.role === "owner").length === 1;
    box.replaceChildren(table([
      { label: "Name", value: (m) => m.name },
      { label: "Email", value: (m) => m.email || "—" },
      { label: "Role", value: (m) => h("span", { class: "badge" }, m.role) },
      { label: "Joined", value: (m) => when(m.joined_at) },
      { label: "", value: (m) => memberActions(org, m, m.user_id === me, manages, box, lastOwner) },
    ], rows));
  }

  function memberActions(org, member, isMe, manages, box, lastOwner) {
    if (org.personal) return "";
    if (isMe && member.role === "owner" && lastOwner) return h("span", { class: "muted" }, "the last owner");
    if (isMe) return twoStep(`Leave ${org.name}`, "Leave", "Confirm leave", `data-leave`, async () => {
      await api(`/auth/orgs/${org.id}/members/${member.user_id}`, { method: "DELETE" });
      say("ok", `You left “${org.name}”. Your keys in it were revoked.`);
      detail.replaceChildren();
      orgs = await loadOrgs();
    });
    if (!manages || (member.role === "owner" && org.role !== "owner")) return h("span", { class: "muted" }, "—");
    const label = member.email || member.name;
    const select = h("select", { "aria-label": `Role of ${label}`, "data-role-of": label },
      offered(org).map((r) => h("option", { value: r, selected: r === member.role }, r)));
    const change = h("button", { type: "button", class: "secondary", "data-change-role": label }, "Change role");
    change.addEventListener("click", async () => {
      try {
        const done = await busy(change, "Saving…", () => api(`/auth/orgs/${org.id}/members/${member.user_id}`, {
          method: "PATCH", body: { role: select.value } }));
        say("ok", `${label} is now ${done.role}.`);
        await showMembers(org, box);
      } catch (err) {
        say("error", plain(err));
      }
    });
    const remove = twoStep(`Remove ${label}`, "Remove", "Confirm remove", "data-remove", async () => {
      const gone = await api(`/auth/orgs/${org.id}/members/${member.user_id}`, { method: "DELETE" });
      say("ok", `${label} was removed; ${gone.revoked_keys} of their keys in this organisation were revoked.`);
      await showMembers(org, box);
    }, label);
    return h("span", { class: "org-actions" }, select, change, remove);
  }

  // two presses instead of a dialog: the first asks, the second acts
  function twoStep(aria, text, confirmText, dataAttr, work, dataValue = "1") {
    const button = h("button", { type: "button", class: "danger", "aria-label": aria, [dataAttr]: dataValue }, text);
    button.addEventListener("click", async () => {
      if (!secondPress(button, confirmText)) return;
      try {
        await busy(button, "Working…", work);
      } catch (err) {
        say("error", plain(err));
      }
    });
    return button;
  }

  function addMemberForm(org, reload) {
    const email = h("input", { name: "email", type: "email", required: true, placeholder: "their sign-in email" });
    const role = h("select", { name: "role" }, offered(org).map((r) => h("option", { value: r }, r)));
    const submit = h("button", { type: "submit", class: "secondary" }, "Add member");
    return h("form", { class: "row", id: "add-member", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const added = await busy(submit, "Adding…", () => api(`/auth/orgs/${org.id}/members`, {
          method: "POST", body: { email: email.value, role: role.value } }));
        email.value = "";
        say("ok", `${added.email || added.name} joined as ${added.role}.`);
        await reload();
      } catch (err) {
        say("error", plain(err));
      }
    } }, h("label", {}, "Add someone who has an account", email), h("label", {}, "Role", role), submit);
  }

  function inviteForm(org, box) {
    const email = h("input", { name: "email", type: "email", required: true });
    const role = h("select", { name: "role" }, offered(org).map((r) => h("option", { value: r }, r)));
    const submit = h("button", { type: "submit" }, "Invite");
    const shown = h("div", { id: "invitation-made" });
    return h("div", {}, h("form", { class: "row", id: "invite", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const made = await busy(submit, "Inviting…", () => api(`/auth/orgs/${org.id}/invitations`, {
          method: "POST", body: { email: email.value, role: role.value } }));
        email.value = "";
        status.replaceChildren();
        shown.replaceChildren(invitationNotice(made, () => shown.replaceChildren()));
        await showInvitations(org, box);
      } catch (err) {
        say("error", plain(err));
      }
    } }, h("label", {}, "Invite by email", email), h("label", {}, "Role", role), submit), shown);
  }

  async function showInvitations(org, box) {
    const rows = (await api(`/auth/orgs/${org.id}/invitations`)).data;
    box.replaceChildren(rows.length ? table([
      { label: "Email", value: (i) => i.email },
      { label: "Role", value: (i) => i.role },
      { label: "Sent", value: (i) => when(i.created_at) },
      { label: "Expires", value: (i) => when(i.expires_at) },
      { label: "", value: (i) => twoStep(`Revoke the invitation for ${i.email}`, "Revoke", "Confirm revoke",
        "data-revoke-invitation", async () => {
          await api(`/auth/orgs/${org.id}/invitations/${i.id}`, { method: "DELETE" });
          say("ok", `The invitation for ${i.email} is revoked: its token no longer works.`);
          await showInvitations(org, box);
        }, i.email) },
    ], rows, "Pending invitations (their tokens are never shown again)") : empty("No pending invitations."));
  }

  function auditPanel(org) {
    const box = h("div", { id: "audit" });
    const session = currentSession();
    // the signed-in key reads it itself when it is this organisation's admin key (or a platform admin's)
    const ownKey = session.kind === "key" && ctx.managesOrgKeys && (ctx.isPlatformAdmin || ctx.orgId === org.id);
    if (ownKey) auditKeys.set(org.id, null);
    if (auditKeys.has(org.id)) auditLog(org, box);
    else box.replaceChildren(auditCredentialForm(org, box));
    return box;
  }

  function auditCredentialForm(org, box) {
    const pasted = h("input", { name: "audit_key", type: "password", autocomplete: "off", placeholder: "tg_…" });
    const use = h("button", { type: "submit", class: "secondary" }, "Use this key");
    const make = h("button", { type: "button", id: "audit-make-key" }, "Create a read-only key for a day");
    make.addEventListener("click", async () => {
      try {
        const made = await busy(make, "Creating…", () => api("/auth/api-keys", {
          method: "POST", headers: { "Swarms-Organization": org.id },
          body: { name: "audit log reader (console)", permissions: ["read"], expires_days: 1 } }));
        auditKeys.set(org.id, made.api_key);
        say("ok", `A read-only key “${made.name}” (${made.key_prefix}…) was made in “${org.name}” for this tab; `
          + "it expires in a day, and you can revoke it sooner.");
        auditLog(org, box);
      } catch (err) {
        say("error", plain(err));
      }
    });
    return h("div", {},
      h("p", { class: "muted" }, "The audit log (GET /admin/audit/list) is read with an API key of this organisation's "
        + "owner or admin, not with a password sign-in. Paste such a key, or let the console create a read-only one "
        + "in this organisation (kept in this tab's memory only)."),
      currentSession().kind === "token" ? make : null,
      h("form", { class: "row", id: "audit-key-form", onsubmit: (e) => {
        e.preventDefault();
        auditKeys.set(org.id, pasted.value.trim());
        auditLog(org, box);
      } }, h("label", {}, "API key", pasted), use));
  }

  async function showLimits(org, call) {
    const into = limitsBox;
    if (!into) return;
    try {
      const info = await call(`/admin/org/limits?org_id=${encodeURIComponent(org.id)}`);
      into.replaceChildren(limitsTable(info), h("p", { class: "muted" }, "Only a platform admin key changes them."));
    } catch (err) {
      into.replaceChildren(notice("error", plainLimit(err)));
    }
  }

  function auditLog(org, box) {
    const key = auditKeys.get(org.id);
    const call = (path) => (key ? withKey(key, path) : api(path));
    showLimits(org, call);
    const action = h("select", { name: "action", id: "audit-action" }, h("option", { value: "" }, "every action"),
      AUDIT_ACTIONS.map((a) => h("option", { value: a }, a)));
    const size = h("select", { name: "limit", id: "audit-limit" }, [5, 20, 50, 100].map((n) =>
      h("option", { value: n, selected: n === 20 }, String(n))));
    const prev = h("button", { type: "button", class: "secondary", id: "audit-prev" }, "Newer");
    const next = h("button", { type: "button", class: "secondary", id: "audit-next" }, "Older");
    const range = h("span", { class: "muted", id: "audit-range" });
    const rows = h("div", { id: "audit-rows" });
    let offset = 0;
    const load = async () => {
      rows.replaceChildren(h("p", { class: "loading" }, "Loading the audit log…"));
      const limit = Number(size.value);
      const query = new URLSearchParams({ action: action.value, limit: String(limit), offset: String(offset) });
      try {
        const page = await call(`/admin/audit/list?${query}`);
        const shown = page.data.length;
        range.textContent = shown ? `${offset + 1}–${offset + shown} of ${page.total}` : `0 of ${page.total}`;
        prev.disabled = offset === 0;
        next.disabled = offset + shown >= page.total;
        rows.replaceChildren(shown ? table([
          { label: "When", value: (e) => when(e.at) },
          { label: "Action", value: (e) => h("code", {}, e.action) },
          { label: "By", value: (e) => e.actor_user_id || (e.actor_key_id ? `key #${e.actor_key_id}` : "—") },
          { label: "Target", value: (e) => `${e.target_type} ${e.target_id || ""}`.trim() },
          { label: "Details", value: (e) => h("span", { class: "audit-details" }, details(e.details)) },
          { label: "IP", value: (e) => e.ip || "—" },
        ], page.data) : empty(action.value ? `No “${action.value}” records.` : "No records yet."));
      } catch (err) {
        rows.replaceChildren(notice("error", plain(err)));
        if (key && err.status === 401) {
          auditKeys.delete(org.id);
          rows.append(h("button", { type: "button", class: "secondary",
            onclick: () => box.replaceChildren(auditCredentialForm(org, box)) }, "Use another key"));
        }
      }
    };
    const again = () => { offset = 0; load(); };
    action.addEventListener("change", again);
    size.addEventListener("change", again);
    prev.addEventListener("click", () => { offset = Math.max(0, offset - Number(size.value)); load(); });
    next.addEventListener("click", () => { offset += Number(size.value); load(); });
    box.replaceChildren(h("div", { class: "row audit-controls" }, h("label", {}, "Action", action),
      h("label", {}, "Per page", size), prev, next, range), rows);
    return load();
  }
}

// an audit record's details (names and ids only) as "key: value" pairs
const details = (d) => Object.entries(d || {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ") || "—";

// The notice for a new invitation: its token and link, shown this once, and how it is accepted.
function invitationNotice(made, dismiss) {
  const link = `${location.origin}/console/#/orgs?invite=${encodeURIComponent(made.token)}`;
  return h("div", { class: "notice warn", role: "status" },
    h("p", {}, `Invitation for ${made.email} as ${made.role}, valid until ${when(made.expires_at)}. `
      + "This is the only time its token is shown: send it to them now."),
    h("div", { class: "secret" }, h("code", { id: "invitation-token" }, made.token)),
    h("p", {}, "Link: ", h("code", { id: "invitation-link" }, link)),
    h("p", { class: "muted" }, `${made.email} accepts it signed in with that email: by opening the link (or pasting the token `
      + "under “Invitation token” on this page), or over HTTP with POST /auth/invitations/accept {\"token\": …}."),
    h("button", { type: "button", class: "secondary", onclick: dismiss }, "I have sent it"));
}
