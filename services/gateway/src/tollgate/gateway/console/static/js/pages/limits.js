// Rate limits (docs/limits.md): the rate tiers, and an organisation's limits. A platform admin key
// lists, creates, edits and deletes tiers and sets any organisation's limits; the key of a team
// organisation's owner or admin reads the tiers and its organisation's limits. A key's own limits
// are on the Keys page (its row's "Limits"). Only auth's /admin/rate-tier/* and /admin/org/limits.
import { api } from "../api.js";
import { busy, empty, h, notice, secondPress, table } from "../ui.js";
import { MEASURES, limitText, limitsPanel, numberOrNull, plainLimit, showFieldError } from "./limits_view.js";

export const title = "Rate limits";
// auth's admin routes take an admin API key (a password session is refused by them)
export const allowed = (ctx) => ctx.managesOrgKeys;

export async function listTiers() {
  return (await api("/admin/rate-tier/list")).data;
}

export async function render(root, ctx) {
  const platform = ctx.isPlatformAdmin;
  const status = h("div", { "aria-live": "polite", id: "limits-status" });
  const say = (kind, text) => status.replaceChildren(notice(kind, text));
  const list = h("div", { id: "tiers" });
  const orgSlot = h("div", { id: "org-limits-slot" });
  const form = platform ? tierForm() : null;

  root.replaceChildren(
    h("p", { class: "muted" }, "A request counts against its key's limits and its organisation's, each worked out "
      + "measure by measure: the override if one is set, else the tier's; no tier means not limited."),
    status, h("h2", {}, "Tiers"), list, form,
    h("h2", {}, "Organisation limits"),
    platform ? orgLookup() : h("p", { class: "muted" }, "Your organisation's limits (read-only; a platform admin sets them)."),
    orgSlot);
  await refresh();
  if (!platform && ctx.orgId) await showOrg(ctx.orgId);

  async function refresh() {
    const tiers = await listTiers();
    list.replaceChildren(tiers.length ? table([
      { label: "Tier", value: (t) => h("span", {}, h("code", {}, t.name), t.default ? h("span", { class: "badge" }, " default") : null) },
      ...MEASURES.map(([m, label]) => ({ label, value: (t) => limitText(t[m]), num: true })),
      platform ? { label: "", value: (t) => h("span", { class: "org-actions" },
        h("button", { type: "button", class: "secondary", "data-edit-tier": t.name, "aria-label": `Edit tier ${t.name}`,
          onclick: () => form.fill(t) }, "Edit"),
        deleteButton(t)) } : null,
    ].filter(Boolean), tiers) : empty("No rate tiers."));
    return tiers;
  }

  // two presses instead of a dialog; a tier in use is refused (409 rate_tier_in_use) and said so
  function deleteButton(t) {
    const button = h("button", { type: "button", class: "danger", "data-delete-tier": t.name, "aria-label": `Delete tier ${t.name}` }, "Delete");
    button.addEventListener("click", async () => {
      if (!secondPress(button, "Confirm delete")) return;
      try {
        await busy(button, "Deleting…", () => api("/admin/rate-tier/delete", { method: "POST", body: { name: t.name } }));
        say("ok", `Tier “${t.name}” was deleted.`);
        await refresh();
      } catch (err) {
        button.dataset.armed = "";
        button.textContent = "Delete";
        say("error", err.code === "rate_tier_in_use"
          ? `Tier “${t.name}” is in use and was not deleted: ${err.message}`
          : `Tier “${t.name}” was not deleted. ${plainLimit(err)}`);
      }
    });
    return button;
  }

  function tierForm() {
    const name = h("input", { name: "name", required: true, maxlength: 64, placeholder: "e.g. team", autocomplete: "off" });
    const inputs = MEASURES.map(([m]) => h("input", { name: m, type: "number", min: 1, step: 1, placeholder: "not limited" }));
    const submit = h("button", { type: "submit" }, "Save tier");
    const el = h("form", { class: "row limits-form", id: "save-tier", onsubmit: async (e) => {
      e.preventDefault();
      const body = { name: name.value };
      MEASURES.forEach(([m], i) => { body[m] = numberOrNull(inputs[i]); });
      try {
        const saved = await busy(submit, "Saving…", () => api("/admin/rate-tier/save", { method: "POST", body }));
        showFieldError(el, {});
        name.value = "";
        inputs.forEach((i) => { i.value = ""; });
        say("ok", `Tier “${saved.name}” was saved; keys and organisations on it get the new numbers within a second.`);
        await refresh();
      } catch (err) {
        showFieldError(el, err);
        say("error", plainLimit(err));
      }
    } }, h("label", {}, "Tier name (an existing name edits it)", name),
    MEASURES.map(([, label], i) => h("label", {}, `${label} (empty: not limited)`, inputs[i])), submit);
    el.fill = (t) => {
      name.value = t.name;
      MEASURES.forEach(([m], i) => { inputs[i].value = t[m] === null ? "" : t[m]; });
      name.focus();
    };
    return el;
  }

  function orgLookup() {
    const orgId = h("input", { name: "org_id", required: true, maxlength: 64, placeholder: "org_…", autocomplete: "off" });
    const submit = h("button", { type: "submit", class: "secondary" }, "Show its limits");
    return h("form", { class: "row", id: "org-limits-lookup", onsubmit: async (e) => {
      e.preventDefault();
      await busy(submit, "Loading…", () => showOrg(orgId.value.trim()));
    } }, h("label", {}, "Organisation id", orgId), submit);
  }

  async function showOrg(orgId) {
    orgSlot.replaceChildren(await limitsPanel({
      id: "org-limits",
      heading: `Limits of organisation ${orgId}`,
      read: () => api(`/admin/org/limits?org_id=${encodeURIComponent(orgId)}`),
      target: { org_id: orgId },
      canEdit: platform,
      tiers: listTiers,
    }));
  }
}
