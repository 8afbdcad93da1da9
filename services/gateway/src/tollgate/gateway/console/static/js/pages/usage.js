// Usage and cost: analytics' usage report for a date range, by day or by model, optionally for one
// key and one operation, as a chart and a table, and the same rows as a CSV file.
import { api } from "../api.js";
import { busy, chart, credits, empty, h, int, isoDay, notice, table } from "../ui.js";

export const title = "Usage";

const OPERATIONS = ["chat", "completion", "embedding", "image", "fine_tuning"];

// The keys this person may pick: their organisation's for an admin key, their own when signed in.
async function keyChoices(ctx) {
  const path = ctx.managesOrgKeys ? "/admin/api-key/list?limit=100" : ctx.hasUser ? "/auth/api-keys" : null;
  if (!path) return [];
  const rows = (await api(path).catch(() => ({ data: [] }))).data || [];
  return rows.filter((k) => !ctx.orgId || !k.org_id || k.org_id === ctx.orgId);
}

export async function render(root, ctx) {
  const today = new Date();
  const start = h("input", { type: "date", name: "start_date", value: isoDay(new Date(today.getTime() - 29 * 86_400_000)) });
  const end = h("input", { type: "date", name: "end_date", value: isoDay(today) });
  const group = h("select", { name: "group_by" }, h("option", { value: "day" }, "day"), h("option", { value: "model" }, "model"));
  const keys = await keyChoices(ctx);
  const keySelect = h("select", { name: "key_id" }, h("option", { value: "" }, "all keys"),
    keys.map((k) => h("option", { value: k.id }, `${k.name || "key"} (${k.key_prefix || `#${k.id}`})`)));
  const opSelect = h("select", { name: "operation" }, h("option", { value: "" }, "all operations"),
    OPERATIONS.map((op) => h("option", { value: op }, op.replace("_", "-"))));
  const models = await api("/v1/models").then((r) => r.data.map((m) => m.id)).catch(() => []);
  const modelSelect = h("select", { name: "model" }, h("option", { value: "" }, "all models"),
    models.map((id) => h("option", { value: id }, id)));
  const show = h("button", { type: "submit" }, "Show");
  const out = h("div");
  let report = null;
  const download = h("button", { type: "button", class: "secondary", id: "csv-export", disabled: true, onclick: () => exportCsv() }, "Export CSV");
  const form = h("form", { class: "row", onsubmit: (e) => {
    e.preventDefault();
    busy(show, "Loading…", load);
  } }, h("label", {}, "From", start), h("label", {}, "To", end), h("label", {}, "Group by", group),
  h("label", {}, "Key", keySelect), h("label", {}, "Model", modelSelect), h("label", {}, "Operation", opSelect), show, download);
  root.replaceChildren(form, out);
  await load();

  async function load() {
    try {
      const filters = new URLSearchParams({ start_date: start.value, end_date: end.value, group_by: group.value });
      if (keySelect.value) filters.set("key_id", keySelect.value);
      if (opSelect.value) filters.set("operation", opSelect.value);
      if (modelSelect.value) filters.set("model", modelSelect.value);
      report = await api(`/analytics/usage?${filters}`);
    } catch (err) {
      report = null;
      download.disabled = true;
      out.replaceChildren(notice("error", err.message));
      return;
    }
    const rows = report.breakdown;
    download.disabled = !rows.length;
    const key = group.value === "day" ? "date" : "model_id";
    out.replaceChildren(h("p", {},
      `${int(report.total_requests)} requests, ${int(report.total_tokens)} tokens, `,
      `success rate ${(report.success_rate * 100).toFixed(1)}%, average latency ${Math.round(report.average_response_time_ms)} ms.`));
    if (!rows.length || report.total_requests === 0) {
      out.append(empty(keySelect.value || opSelect.value || modelSelect.value ? "No usage in this range for these filters." : "No usage in this range."));
      return;
    }
    out.append(h("div", { class: "charts" },
      chart(`Cost by ${group.value} (credits)`, "bar", rows.map((r) => r[key]), [{ label: "credits", data: rows.map((r) => r.cost), backgroundColor: "#1f5f8b" }]),
      chart(`Tokens by ${group.value}`, "bar", rows.map((r) => r[key]), [{ label: "tokens", data: rows.map((r) => r.tokens), backgroundColor: "#4f8f5b" }])));
    out.append(h("h2", {}, "Rows"), table([
      { label: group.value === "day" ? "Day" : "Model", value: (r) => r[key] },
      { label: "Requests", value: (r) => int(r.requests), num: true },
      { label: "Tokens", value: (r) => int(r.tokens), num: true },
      { label: "Cached", value: (r) => int(r.cached_tokens), num: true },
      { label: "Avg latency (ms)", value: (r) => Math.round(r.avg_response_time), num: true },
      { label: "Cost", value: (r) => credits(r.cost, 6), num: true },
    ], rows));
  }

  function exportCsv() {
    if (!report) return;
    const fields = [group.value === "day" ? "date" : "model_id", "requests", "tokens", "cached_tokens",
      "cache_write_tokens", "reasoning_tokens", "avg_response_time", "cost"];
    const quote = (v) => (/[",\n]/.test(String(v)) ? `"${String(v).replaceAll('"', '""')}"` : String(v));
    const lines = [fields.join(","), ...report.breakdown.map((r) => fields.map((f) => quote(r[f] ?? "")).join(","))];
    const url = URL.createObjectURL(new Blob([`${lines.join("\n")}\n`], { type: "text/csv" }));
    const only = [keySelect.value && `key-${keySelect.value}`, modelSelect.value.replace(/[^A-Za-z0-9._-]+/g, "_"), opSelect.value].filter(Boolean).map((f) => `-${f}`).join("");
    const a = h("a", { href: url, download: `tollgate-usage-${start.value}-${end.value}-by-${group.value}${only}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }
}
