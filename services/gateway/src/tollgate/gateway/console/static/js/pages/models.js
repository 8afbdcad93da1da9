// Models. Everyone: the models this credential may call, with list prices (IndoxRouter's model detail
// route). Platform admins: the whole catalog (/admin/model/list) with providers, deployments,
// fallbacks, prices and limits, and add / edit / delete (/admin/model/save, /admin/model/delete).
import { api } from "../api.js";
import { busy, credits, empty, h, notice, secondPress, table } from "../ui.js";
import { modelForm } from "./model_form.js";

export const title = "Models";
const MAX_DETAILS = 50;
const PAGE = 100;

export async function render(root, ctx) {
  // the model routes are the platform admin's (role admin), the same authority the probe found
  if (ctx.isPlatformAdmin) await renderCatalog(root);
  else await renderCallable(root);
}

async function renderCallable(root) {
  const models = (await api("/v1/models")).data;
  if (!models.length) {
    root.replaceChildren(empty("No model is available to you."));
    return;
  }
  const details = await Promise.all(models.slice(0, MAX_DETAILS).map((m) =>
    api(`/models/${encodeURIComponent(m.owned_by)}/${encodeURIComponent(m.id)}`).catch(() => null)));
  const rows = models.map((m, i) => ({ model: m, info: details[i] || null }));
  const price = (r, field) => (r.info ? credits(r.info.pricing[field], 6) : "—");
  root.replaceChildren(
    h("p", { class: "muted" }, "Prices in credits: per 1,000 tokens, and per request where a model charges one."),
    table([
      { label: "Model", value: (r) => r.model.id },
      { label: "Provider", value: (r) => r.model.owned_by },
      { label: "Input / 1K", value: (r) => price(r, "input"), num: true },
      { label: "Output / 1K", value: (r) => price(r, "output"), num: true },
      { label: "Per request", value: (r) => price(r, "request"), num: true },
      { label: "Default max tokens", value: (r) => (r.info && r.info.max_tokens) || "—", num: true },
    ], rows));
  if (models.length > MAX_DETAILS) root.append(h("p", { class: "muted" }, `Prices shown for the first ${MAX_DETAILS} models.`));
}

const host = (url) => {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
};
const orNone = (v, digits = 6) => (v === null || v === undefined ? "—" : credits(v, digits));

function limitsText(m) {
  const parts = [["rpm", m.rpm], ["tpm", m.tpm], ["tpd", m.tpd]].filter(([, v]) => v).map(([k, v]) => `${k} ${v.toLocaleString()}`);
  return parts.length ? parts.join(" · ") : "none";
}

// credits per 1M tokens (the route's unit), per request and per image; only the prices a model sets
function pricesCell(m) {
  const rows = [["in", m.price_in, true], ["out", m.price_out, true], ["cached in", m.price_cached_in],
    ["cache write", m.price_cache_write], ["reasoning", m.price_reasoning], ["embedding", m.price_embedding],
    ["per request", m.price_request], ["per image", m.price_image]];
  return h("ul", { class: "plain" }, rows.filter(([, v, always]) => always || v).map(([label, v]) =>
    h("li", { "data-price": label }, `${label} ${orNone(v)}`)));
}

function deploymentsCell(m) {
  const share = (d) => `weight ${d.weight}, priority ${d.priority}`;
  if (!m.deployments.length) return h("span", { class: "muted" }, "one upstream");
  return h("ul", { class: "plain" },
    h("li", {}, `default: ${m.provider} · ${host(m.base_url)} (${share(m)})`),
    m.deployments.map((d) => h("li", { "data-deployment": d.name },
      `${d.name}: ${d.provider} · ${host(d.base_url)} · ${d.model} (${share(d)})${d.has_api_key ? "" : " · no key"}`)));
}

async function renderCatalog(root) {
  const status = h("div", { "aria-live": "polite" });
  const editor = h("section", { class: "panel model-editor", hidden: true, "aria-labelledby": "model-editor-title" });
  const list = h("div");
  const count = h("span", { class: "muted" });
  const add = h("button", { type: "button", id: "add-model" }, "Add a model");
  add.addEventListener("click", () => openEditor(null));
  root.replaceChildren(
    h("p", { class: "muted" }, "The whole catalog (platform admin). Prices in credits per 1M tokens, per request and per image; every deployment of a model is billed at the model's prices."),
    h("div", { class: "row" }, add), status, editor, h("h2", {}, "Catalog ", count), list);
  let rows = [];
  let total = 0;
  await load(true);

  async function load(fresh) {
    const page = await api(`/admin/model/list?limit=${PAGE}&offset=${fresh ? 0 : rows.length}`);
    rows = fresh ? page.data : rows.concat(page.data);
    total = page.total;
    show();
  }

  function show() {
    if (!rows.length) {
      list.replaceChildren(empty("The catalog is empty. Add a model above."));
      return;
    }
    const catalog = table([
      { label: "Model", value: (m) => h("div", {}, h("strong", {}, m.name), h("div", { class: "muted" }, m.provider)) },
      { label: "Upstream", value: (m) => h("div", {}, m.model, h("div", { class: "muted" }, `${host(m.base_url)}${m.has_api_key ? "" : " · no key"}`)) },
      { label: "Prices", value: pricesCell },
      { label: "Limits", value: limitsText },
      { label: "Fallbacks", value: (m) => (m.fallbacks.length ? m.fallbacks.join(" → ") : "—") },
      { label: "Deployments", value: deploymentsCell },
      { label: "", value: (m) => h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", "data-edit": m.name, "aria-label": `Edit ${m.name}`, onclick: () => openEditor(m) }, "Edit"),
        deleteButton(m)) },
    ], rows);
    catalog.classList.add("catalog");
    count.textContent = `${total} model${total === 1 ? "" : "s"}`;
    list.replaceChildren(catalog);
    list.querySelectorAll("tbody tr").forEach((tr, i) => tr.setAttribute("data-model", rows[i].name));
    if (rows.length < total) {
      const more = h("button", { type: "button", class: "secondary" }, `Show more (${total - rows.length} left)`);
      more.addEventListener("click", () => busy(more, "Loading…", () => load(false)));
      list.append(h("div", { class: "row" }, more));
    }
  }

  function openEditor(model) {
    status.replaceChildren();
    editor.hidden = false;
    editor.replaceChildren(
      h("h2", { id: "model-editor-title" }, model ? `Edit ${model.name}` : "Add a model"),
      modelForm(model, async (saved) => {
        closeEditor();
        status.replaceChildren(notice("ok", `${model ? "Saved" : "Added"} ${saved.name}: clients see the change within a second.`));
        await load(true);
      }, closeEditor));
    editor.scrollIntoView({ block: "start" });
    editor.querySelector("input").focus();
  }

  function closeEditor() {
    editor.hidden = true;
    editor.replaceChildren();
    add.focus();
  }

  // two presses instead of a dialog, as on the Keys page
  function deleteButton(m) {
    const button = h("button", { type: "button", class: "danger", "data-delete": m.name, "aria-label": `Delete ${m.name}` }, "Delete");
    button.addEventListener("click", async () => {
      if (!secondPress(button, "Confirm delete")) return;
      try {
        await busy(button, "Deleting…", () => api("/admin/model/delete", { method: "POST", body: { id: m.id } }));
        status.replaceChildren(notice("ok", `${m.name} is deleted: clients can no longer call it.`));
        await load(true);
      } catch (err) {
        status.replaceChildren(notice("error", err.message));
      }
    });
    return button;
  }
}
