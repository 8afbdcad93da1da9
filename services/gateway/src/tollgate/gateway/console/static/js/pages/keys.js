// Keys: create (the secret shown once), list, revoke. A signed-in person manages their own keys
// (/auth/api-keys); an admin key manages its organisation's keys, or every key for a platform admin
// (/admin/api-key/*).
import { api, currentSession } from "../api.js";
import { busy, credits, empty, h, notice, secondPress, table, when } from "../ui.js";
import { rechargeForm } from "./credits.js";
import { groupSelect, groupsSection, keyEditPanel, keyModelsPanel, listGroups } from "./keys_admin.js";
import { keyLimitsPanel } from "./keys_limits.js";

export const title = "Keys";
export const allowed = (ctx) => ctx.hasUser || ctx.managesOrgKeys;

export async function render(root, ctx) {
  const admin = ctx.managesOrgKeys;
  const status = h("div", { "aria-live": "polite", id: "keys-status" });
  const list = h("div");
  const slot = h("div", { id: "key-panel-slot" }); // a key's models or settings, opened from its row
  const say = (kind, text) => status.replaceChildren(notice(kind, text));
  let groups = admin ? await listGroups().catch(() => []) : [];
  let createGroup = null; // the create form's group choice, refilled when groups change
  root.replaceChildren(
    h("p", { class: "muted" }, admin
      ? (ctx.isPlatformAdmin ? "Every organisation's keys (platform admin)." : "Your organisation's keys.")
      : "Your keys in this organisation. A key is shown once, when it is created: store it then."),
    admin ? adminForm() : ownForm(), status, h("h2", {}, "Keys"), list, slot);
  await refresh();
  if (admin) {
    root.append(await groupsSection(ctx, say, async () => {
      groups = await listGroups();
      if (createGroup) createGroup.replaceChildren(...Array.from(groupSelect(groups, null).childNodes));
      await refresh();
    }));
  }

  async function refresh() {
    const rows = admin ? (await api("/admin/api-key/list?limit=100")).data : (await api("/auth/api-keys")).data;
    if (!rows.length) {
      list.replaceChildren(empty("No keys yet. Create one above."));
      return;
    }
    const columns = [
      { label: "Name", value: (k) => k.name },
      { label: "Prefix", value: (k) => h("code", {}, k.key_prefix) },
      { label: "Permissions", value: (k) => k.permissions.join(", ") },
      admin ? { label: "Role", value: (k) => k.role } : null,
      admin ? { label: "Month quota", value: (k) => (k.month_quota ? credits(k.month_quota) : "none"), num: true } : null,
      admin ? { label: "Group", value: (k) => groupName(k.group_id) } : null,
      { label: "Created", value: (k) => when(k.created_at) },
      { label: "Last used", value: (k) => when(k.last_used_at) },
      { label: "Expires", value: (k) => when(k.expires_at) },
      { label: "Status", value: (k) => (k.revoked ? h("span", { class: "badge bad" }, "revoked") : h("span", { class: "badge ok" }, "active")) },
      { label: "", value: (k) => (k.revoked ? "" : h("span", { class: "org-actions" }, admin ? adminButtons(k) : null,
        isMine(k) ? h("span", { class: "muted" }, "signed in with it") : revokeButton(k))) },
    ].filter(Boolean);
    list.replaceChildren(table(columns, rows));
  }

  function groupName(id) {
    if (!id) return "—";
    const group = groups.find((g) => g.id === id);
    return group ? group.name : `#${id}`;
  }

  // an admin key's row: its model grants, and its settings (name, quota; role and group for a platform admin)
  function adminButtons(key) {
    const models = h("button", { type: "button", class: "secondary", "data-models": key.name, "aria-label": `Models of ${key.name}` }, "Models");
    models.addEventListener("click", async () => {
      slot.replaceChildren(await keyModelsPanel(key, say));
      slot.scrollIntoView({ block: "nearest" });
    });
    const edit = h("button", { type: "button", class: "secondary", "data-edit": key.name, "aria-label": `Edit ${key.name}` }, "Edit");
    edit.addEventListener("click", () => {
      slot.replaceChildren(keyEditPanel(key, ctx, groups, say, async () => {
        slot.replaceChildren();
        await refresh();
      }));
      slot.scrollIntoView({ block: "nearest" });
    });
    // its rate limits (docs/limits.md): a platform admin sets them, an organisation admin reads them
    const limits = h("button", { type: "button", class: "secondary", "data-limits": key.name, "aria-label": `Rate limits of ${key.name}` }, "Limits");
    limits.addEventListener("click", async () => {
      slot.replaceChildren(await keyLimitsPanel(key, ctx));
      slot.scrollIntoView({ block: "nearest" });
    });
    return [models, edit, limits];
  }

  // the key this console is signed in with: revoking it here would lock the person out mid-session
  function isMine(key) {
    const session = currentSession();
    return session.kind === "key" && session.apiKey.startsWith(key.key_prefix);
  }

  // two steps instead of a dialog: the first press asks, the second revokes
  function revokeButton(key) {
    const button = h("button", { class: "danger", "data-revoke": key.name, "aria-label": `Revoke ${key.name}` }, "Revoke");
    button.addEventListener("click", async () => {
      if (!secondPress(button, "Confirm revoke")) return;
      try {
        await busy(button, "Revoking…", () => (admin
          ? api("/admin/api-key/delete", { method: "POST", body: { id: key.id } })
          : api(`/auth/api-keys/${key.id}`, { method: "DELETE" })));
        status.replaceChildren(notice("ok", `Key “${key.name}” is revoked: it stops working at every gateway within a second.`));
        await refresh();
      } catch (err) {
        status.replaceChildren(notice("error", err.message));
      }
    });
    return button;
  }

  function showSecret(name, secret) {
    const code = h("code", { id: "new-key" }, secret);
    const copy = h("button", { type: "button", class: "secondary", onclick: async () => {
      try {
        await navigator.clipboard.writeText(secret);
        copy.textContent = "Copied";
      } catch {
        copy.textContent = "Select and copy it by hand";
      }
    } }, "Copy");
    status.replaceChildren(h("div", { class: "notice warn", role: "status" },
      h("p", {}, `Key “${name}” was created. This is the only time it is shown: copy it now.`),
      h("div", { class: "secret" }, code, copy),
      ctx.isPlatformAdmin ? rechargeForm(secret) : null,
      h("button", { type: "button", class: "secondary", onclick: () => status.replaceChildren() }, "I have stored it")));
  }

  function ownForm() {
    const name = h("input", { name: "name", required: true, maxlength: 100, placeholder: "e.g. laptop" });
    const perms = ["read", "write", "delete"].map((p) => h("label", { class: "inline" },
      h("input", { type: "checkbox", name: "perm", value: p, checked: true }), ` ${p}`));
    const expires = h("input", { name: "expires_days", type: "number", min: 1, max: 3650, placeholder: "never" });
    const submit = h("button", { type: "submit" }, "Create key");
    return h("form", { class: "row", id: "create-key", onsubmit: async (e) => {
      e.preventDefault();
      const permissions = perms.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      const body = { name: name.value, permissions };
      if (expires.value) body.expires_days = Number(expires.value);
      try {
        const made = await busy(submit, "Creating…", () => api("/auth/api-keys", { method: "POST", body }));
        name.value = "";
        showSecret(made.name, made.api_key);
        await refresh();
      } catch (err) {
        status.replaceChildren(notice("error", err.message));
      }
    } }, h("label", {}, "Name", name), h("fieldset", {}, h("legend", {}, "Permissions"), perms),
    h("label", {}, "Expires in (days)", expires), submit);
  }

  function adminForm() {
    const name = h("input", { name: "name", required: true, maxlength: 100 });
    const email = h("input", { name: "email", type: "email", placeholder: "optional" });
    const quota = h("input", { name: "month_quota", type: "number", min: 0, step: "0.01", placeholder: "none" });
    const role = h("select", { name: "role" }, h("option", { value: "user" }, "user"),
      ctx.isPlatformAdmin ? h("option", { value: "admin" }, "admin") : null);
    const group = ctx.isPlatformAdmin ? groupSelect(groups, null) : null; // an org admin's keys take its own group
    createGroup = group;
    const submit = h("button", { type: "submit" }, "Create key");
    return h("form", { class: "row", id: "create-key", onsubmit: async (e) => {
      e.preventDefault();
      const body = { name: name.value, role: role.value, email: email.value || "" };
      if (quota.value) body.month_quota = Number(quota.value);
      if (group && group.value) body.group_id = Number(group.value);
      try {
        const made = await busy(submit, "Creating…", () => api("/admin/api-key/apply", { method: "POST", body }));
        name.value = "";
        showSecret(made.name, made.api_key);
        await refresh();
      } catch (err) {
        status.replaceChildren(notice("error", err.message));
      }
    } }, h("label", {}, "Name", name), h("label", {}, "Role", role), h("label", {}, "Email", email),
    h("label", {}, "Month quota (credits)", quota), group ? h("label", {}, "Group", group) : null, submit);
  }
}
