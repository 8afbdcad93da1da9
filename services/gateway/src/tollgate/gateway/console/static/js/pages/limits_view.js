// Rate limits as the console shows them, shared by the Rate limits, Keys and Organisations pages:
// a key's or an organisation's tier and overrides next to what they come to (docs/limits.md), and the
// form a platform admin sets them with. Only auth's /admin/* routes; errors shown at the field named.
import { api } from "../api.js";
import { busy, h, int, notice, table } from "../ui.js";

export const MEASURES = [
  ["rpm", "Requests / minute"],
  ["tpm", "Tokens / minute"],
  ["tpd", "Tokens / day"],
];

const PLAIN = {
  rate_tier_in_use: "This tier is still in use (or is the default tier): move its keys and organisations to another tier first.",
  rate_tier_not_found: "There is no rate tier of that name.",
  platform_admin_required: "Only a platform admin key changes rate limits; organisation admins read them.",
  admin_required: "Rate limits are read with an admin API key (a platform admin's, or a team organisation owner's or admin's).",
  api_key_not_found: "That key no longer exists.",
  organization_not_found: "There is no organisation with that id.",
  permission_denied: "The key you signed in with does not have the permission for this.",
};
export const plainLimit = (err) => PLAIN[err.reason] || PLAIN[err.code] || err.message;

export const limitText = (value) => (value === null || value === undefined ? "not limited" : int(value));

// What is set and what it comes to, measure by measure.
export function limitsTable(info) {
  const rows = [
    { what: "Tier", set: info.tier || "none", effective: info.effective.tier || "none" },
    ...MEASURES.map(([m, label]) => ({
      what: label,
      set: info[m] === null ? `the tier's` : int(info[m]),
      effective: limitText(info.effective[m]),
      measure: m,
    })),
  ];
  return table([
    { label: "", value: (r) => r.what },
    { label: "Set here", value: (r) => r.set },
    { label: "In effect", value: (r) => h("span", { "data-effective": r.measure || "tier" }, r.effective) },
  ], rows);
}

// Marks the field a refusal named (`param`, e.g. "rpm" or "name") and says why next to it; the
// message also goes to `say` for the form as a whole.
export function showFieldError(form, err) {
  form.querySelectorAll(".field-error").forEach((el) => el.remove());
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  const name = err.param ? String(err.param).split(".").pop() : null;
  const input = name ? form.querySelector(`[name="${CSS.escape(name)}"]`) : null;
  if (!input) return false;
  const id = `${form.id || "form"}-${name}-error`;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", id);
  input.closest("label").append(h("span", { class: "field-error", id, role: "alert" }, plainLimit(err)));
  input.focus();
  return true;
}

const numberInput = (name, value) => h("input", { name, type: "number", min: 1, step: 1, inputmode: "numeric",
  value: value === null || value === undefined ? "" : value, placeholder: "—" });
export const numberOrNull = (input) => (input.value.trim() === "" ? null : Number(input.value));

// A platform admin's form for a key's or an organisation's limits: the tier (or none) and each
// override (empty: the tier's number). `target` is {id} or {org_id}; `onSaved` gets the answer.
export function limitsForm(id, target, info, tiers, say, onSaved) {
  const tier = h("select", { name: "tier" }, h("option", { value: "" }, "no tier"),
    tiers.map((t) => h("option", { value: t.name, selected: t.name === info.tier }, t.name)));
  const inputs = MEASURES.map(([m]) => numberInput(m, info[m]));
  const submit = h("button", { type: "submit" }, "Save limits");
  const form = h("form", { class: "row limits-form", id, onsubmit: async (e) => {
    e.preventDefault();
    const body = { ...target, tier: tier.value || null };
    MEASURES.forEach(([m], i) => { body[m] = numberOrNull(inputs[i]); });
    const path = "id" in target ? "/admin/api-key/limits" : "/admin/org/limits";
    try {
      const saved = await busy(submit, "Saving…", () => api(path, { method: "POST", body }));
      showFieldError(form, {});
      say("ok", "The limits were saved; every gateway uses them within a second.");
      await onSaved(saved);
    } catch (err) {
      showFieldError(form, err);
      say("error", plainLimit(err));
    }
  } }, h("label", {}, "Tier", tier), MEASURES.map(([, label], i) => h("label", {}, `${label} (empty: the tier's)`, inputs[i])), submit);
  return form;
}

// The panel of one key's or organisation's limits: read for everyone the route lets read, the form
// for a platform admin. `read` fetches the limits; `tiers` lists the tiers (platform admins only).
export async function limitsPanel({ id, heading, read, target, canEdit, tiers, say, closable }) {
  const box = h("div", { class: "panel key-panel limits-panel", id });
  const status = h("div", { "aria-live": "polite", class: "limits-status" });
  const speak = say || ((kind, text) => status.replaceChildren(notice(kind, text)));
  const draw = async (info) => {
    box.replaceChildren(...[h("h3", {}, heading), limitsTable(info),
      canEdit ? limitsForm(`${id}-form`, target, info, await tiers(), speak, draw) : h("p", { class: "muted" },
        "Only a platform admin key changes rate limits."),
      status, closable ? h("button", { type: "button", class: "secondary", onclick: () => box.remove() }, "Close") : null,
    ].filter(Boolean));
  };
  box.append(h("p", { class: "loading" }, "Loading the limits…"));
  try {
    await draw(await read());
  } catch (err) {
    box.replaceChildren(h("h3", {}, heading), notice("error", plainLimit(err)));
  }
  return box;
}
