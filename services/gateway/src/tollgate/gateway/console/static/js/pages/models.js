// Models: the catalog this credential may call, with list prices (IndoxRouter's model detail route).
import { api } from "../api.js";
import { credits, empty, h, table } from "../ui.js";

export const title = "Models";
const MAX_DETAILS = 50;

export async function render(root) {
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
