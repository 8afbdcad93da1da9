// Budgets, the low-balance alert, alert webhooks and alert deliveries of one organisation (the
// SloughGPT-shaped /cost/* routes). Members read budgets and the low-balance setting; owners and
// admins change them and see webhooks and deliveries; a platform admin picks any organisation.
import { api } from "../api.js";
import { busy, credits, empty, h, notice, table, when } from "../ui.js";

const emails = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
const qs = (params) => {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""));
  return q.toString() ? `?${q}` : "";
};

function feedback(box, work) {
  return work().catch((err) => box.replaceChildren(notice("error", err.message)));
}

// ctx: the console's role context. Returns the section (an element) for `orgId`.
export function costSettings(ctx, orgId) {
  const manage = ctx.isPlatformAdmin || ["owner", "admin"].includes(ctx.orgRole);
  const orgParam = ctx.isPlatformAdmin ? orgId : null; // others act on their own organisation
  const root = h("div", { class: "cost-settings", "data-org": orgId || "" });
  const budgets = h("div");
  const low = h("div");
  const hooks = h("div");
  const alerts = h("div");
  // each section's answers and refusals show right under its form
  const status = h("div", { "aria-live": "polite", id: "budget-status" });
  const lowStatus = h("div", { "aria-live": "polite", id: "low-balance-status" });
  const alertStatus = h("div", { "aria-live": "polite" });
  root.append(h("h2", {}, "Budgets"), budgets, status, h("h2", {}, "Low-balance alert"), low, lowStatus);
  if (manage) root.append(h("h2", {}, "Alert webhooks"), hooks, h("h2", {}, "Alert deliveries"), alerts, alertStatus);
  root.load = () => Promise.all([loadBudgets(), manage ? loadHooks() : null, manage ? loadAlerts(true) : null]);

  async function loadBudgets() {
    const list = await api(`/cost/budget${qs({ org_id: orgParam })}`);
    const rows = list.data;
    budgets.replaceChildren(
      rows.length ? table([
        { label: "Applies to", value: (b) => (b.key_id ? `key #${b.key_id}` : "whole organisation") },
        { label: "Period", value: (b) => `${b.period} (${b.current_period})` },
        { label: "Limit", value: (b) => credits(b.monthly_budget), num: true },
        { label: "Spent", value: (b) => credits(b.spent, 6), num: true },
        { label: "Used", value: (b) => `${b.percentage_used}%`, num: true },
        { label: "Alert at", value: (b) => (b.alert_threshold ? `${Math.round(b.alert_threshold * 100)}%` : "50/80/100%") },
        { label: "E-mails", value: (b) => b.alert_emails.join(", ") || "—" },
        { label: "When spent", value: (b) => (b.hard_limit ? "refuse requests" : "alert only") },
        manage ? { label: "", value: removeBudgetButton } : null,
      ].filter(Boolean), rows) : empty(manage ? "No budget yet: set one below." : "No budget is set. An owner or admin sets them."),
      manage ? budgetForm() : null);
    budgets.querySelectorAll("tbody tr").forEach((tr, i) => tr.setAttribute("data-budget", rows[i].key_id ? `key-${rows[i].key_id}-${rows[i].period}` : `org-${rows[i].period}`));
    showLowBalance(list.low_balance || (await api(`/cost/low-balance${qs({ org_id: orgParam })}`)));
  }

  function removeBudgetButton(b) {
    const button = h("button", { type: "button", class: "danger", "aria-label": `Remove the ${b.period} budget` }, "Remove");
    button.addEventListener("click", () => feedback(status, async () => {
      await busy(button, "Removing…", () => api(`/cost/budget${qs({ key_id: b.key_id, period: b.period, org_id: orgParam })}`, { method: "DELETE" }));
      status.replaceChildren(notice("ok", "The budget is removed."));
      await loadBudgets();
    }));
    return button;
  }

  function budgetForm() {
    const limit = h("input", { name: "monthly_budget", inputmode: "decimal", required: true });
    const period = h("select", { name: "period" }, h("option", { value: "monthly" }, "monthly"), h("option", { value: "daily" }, "daily"));
    const key = h("input", { name: "key_id", inputmode: "numeric", placeholder: "whole organisation" });
    const threshold = h("input", { name: "alert_threshold", inputmode: "numeric", placeholder: "e.g. 90" });
    const to = h("input", { name: "alert_emails", placeholder: "a@example.com, b@example.com" });
    const hard = h("input", { type: "checkbox", name: "hard_limit", checked: true });
    const submit = h("button", { type: "submit" }, "Set budget");
    return h("form", { class: "row", id: "budget-form", novalidate: true, onsubmit: (e) => {
      e.preventDefault();
      feedback(status, async () => {
        const body = { monthly_budget: limit.value.trim(), period: period.value, alert_emails: emails(to.value), hard_limit: hard.checked };
        if (key.value.trim()) body.key_id = /^\d+$/.test(key.value.trim()) ? Number(key.value.trim()) : key.value.trim();
        if (threshold.value.trim()) body.alert_threshold = String(Number(threshold.value) / 100);
        if (orgParam) body.org_id = orgParam;
        const b = await busy(submit, "Saving…", () => api("/cost/budget", { method: "POST", body }));
        status.replaceChildren(notice("ok", `Budget set: ${credits(b.monthly_budget)} credits ${b.period}, ${credits(b.spent, 6)} spent so far.`));
        await loadBudgets();
      });
    } }, h("label", {}, "Limit (credits)", limit), h("label", {}, "Period", period), h("label", {}, "Key id", key),
    h("label", {}, "Also alert at (%)", threshold), h("label", {}, "Alert e-mails", to),
    h("label", { class: "inline" }, hard, "Refuse requests past it"), submit);
  }

  function showLowBalance(v) {
    const set = v.low_balance_threshold !== null;
    const text = set
      ? `Alert when the balance falls below ${credits(v.low_balance_threshold)} credits (now ${credits(v.balance, 6)}${v.below_threshold ? ", below it" : ""}); e-mails: ${v.alert_emails.join(", ") || "none"}${v.alert_emails_from_budget ? " (the monthly budget's)" : ""}.`
      : `No low-balance alert is set (balance ${credits(v.balance, 6)}).`;
    low.replaceChildren(h("p", { id: "low-balance-state", "data-threshold": set ? v.low_balance_threshold : "" }, text), manage ? lowBalanceForm(v) : null);
  }

  function lowBalanceForm(v) {
    const set = v.low_balance_threshold !== null;
    const threshold = h("input", { name: "low_balance_threshold", inputmode: "decimal", required: true, value: set ? v.low_balance_threshold : "" });
    const inherit = h("input", { type: "checkbox", name: "inherit", checked: !set || v.alert_emails_from_budget });
    const to = h("input", { name: "alert_emails", placeholder: "empty: no e-mail", value: set && !v.alert_emails_from_budget ? v.alert_emails.join(", ") : "" });
    const submit = h("button", { type: "submit" }, "Set alert");
    const send = (body, button, label) => feedback(lowStatus, async () => {
      if (orgParam) body.org_id = orgParam;
      await busy(button, label, () => api("/cost/low-balance", { method: "POST", body }));
      lowStatus.replaceChildren(notice("ok", body.low_balance_threshold === null ? "The low-balance alert is removed." : "The low-balance alert is set."));
      await Promise.all([loadBudgets(), manage ? loadAlerts(true) : null]);
    });
    const remove = set ? h("button", { type: "button", class: "danger" }, "Remove alert") : null;
    if (remove) remove.addEventListener("click", () => send({ low_balance_threshold: null }, remove, "Removing…"));
    return h("form", { class: "row", id: "low-balance-form", novalidate: true, onsubmit: (e) => {
      e.preventDefault();
      const body = { low_balance_threshold: threshold.value.trim() };
      if (!inherit.checked) body.alert_emails = emails(to.value);
      send(body, submit, "Saving…");
    } }, h("label", {}, "Threshold (credits)", threshold), h("label", { class: "inline" }, inherit, "E-mail the monthly budget's addresses"),
    h("label", {}, "Or these e-mails", to), submit, remove);
  }

  async function loadHooks() {
    const rows = (await api(`/cost/webhooks${qs({ org_id: orgParam })}`)).data;
    const url = h("input", { name: "url", type: "url", required: true, placeholder: "e.g. https://hooks.example.com/tollgate" });
    const description = h("input", { name: "description", maxlength: 500, placeholder: "optional" });
    const submit = h("button", { type: "submit" }, "Add endpoint");
    const shown = h("div", { "aria-live": "polite" });
    hooks.replaceChildren(
      rows.length ? table([
        { label: "URL", value: (w) => w.url },
        { label: "Description", value: (w) => w.description || "—" },
        { label: "Secret", value: (w) => h("code", {}, w.secret_hint) },
        { label: "Added", value: (w) => when(w.created_at) },
        { label: "", value: (w) => {
          const del = h("button", { type: "button", class: "danger", "aria-label": `Delete ${w.url}` }, "Delete");
          del.addEventListener("click", () => feedback(shown, async () => {
            await busy(del, "Deleting…", () => api(`/cost/webhooks/${encodeURIComponent(w.id)}${qs({ org_id: orgParam })}`, { method: "DELETE" }));
            await loadHooks();
          }));
          return del;
        } },
      ], rows) : empty("No webhook endpoint: alerts go to Kafka and e-mail only."),
      h("form", { class: "row", id: "webhook-form", novalidate: true, onsubmit: (e) => {
        e.preventDefault();
        feedback(shown, async () => {
          const body = { url: url.value.trim(), description: description.value || null };
          if (orgParam) body.org_id = orgParam;
          const made = await busy(submit, "Adding…", () => api("/cost/webhooks", { method: "POST", body }));
          await loadHooks();
          hooks.append(h("div", { class: "notice warn", role: "status" },
            `Endpoint added. Its signing secret is shown once: `, h("code", {}, made.secret)));
        });
      } }, h("label", {}, "URL", url), h("label", {}, "Description", description), submit), shown);
  }

  // newest first, a page at a time; "Older" pages back with before_id
  let alertRows = [];
  async function loadAlerts(fresh) {
    const before = fresh ? null : alertRows[alertRows.length - 1].id;
    const page = await api(`/cost/alerts${qs({ org_id: orgParam, limit: 10, before_id: before })}`);
    alertRows = fresh ? page.data : alertRows.concat(page.data);
    const refresh = h("button", { type: "button", class: "secondary", id: "alerts-refresh" }, "Refresh");
    refresh.addEventListener("click", () => busy(refresh, "Loading…", () => loadAlerts(true)).catch((err) => alertStatus.replaceChildren(notice("error", err.message))));
    const older = page.has_more ? h("button", { type: "button", class: "secondary", id: "alerts-older" }, "Older alerts") : null;
    if (older) older.addEventListener("click", () => busy(older, "Loading…", () => loadAlerts(false)).catch((err) => alertStatus.replaceChildren(notice("error", err.message))));
    alerts.replaceChildren(
      alertRows.length ? table([
        { label: "Fired", value: (a) => when(a.fired_at) },
        { label: "Alert", value: alertText },
        { label: "Deliveries", value: (a) => h("ul", { class: "plain" }, a.deliveries.map(deliveryItem)) },
      ], alertRows) : empty("No alert has fired for this organisation."),
      h("div", { class: "row" }, refresh, older));
    alerts.querySelectorAll("tbody tr").forEach((tr, i) => tr.setAttribute("data-alert", alertRows[i].kind));
  }

  return root;
}

function alertText(a) {
  if (a.kind === "low_balance") return `Low balance: below ${credits(a.limit)} credits (balance ${credits(a.balance_micros / 1e6, 6)})`;
  const what = a.kind === "quota_threshold" ? `key #${a.key_id}'s month quota` : a.key_id ? `key #${a.key_id}'s budget` : "the organisation's budget";
  return `${a.threshold_pct}% of ${what} in ${a.period}: ${credits(a.spent, 6)} of ${credits(a.limit)}`;
}

function deliveryItem(d) {
  const cls = { delivered: "ok", failed: "bad", pending: "pending" }[d.status] || "";
  const tail = d.status === "delivered" ? ` ${when(d.delivered_at)}` : d.last_error ? `: ${d.last_error}` : d.next_attempt_at ? `, next try ${when(d.next_attempt_at)}` : "";
  return h("li", { "data-channel": d.channel },
    h("span", { class: `badge ${cls}`, "data-delivery": d.status }, d.status), ` ${d.channel}${d.channel === "kafka" ? "" : ` ${d.target}`} · ${d.attempts} attempt${d.attempts === 1 ? "" : "s"}${tail}`);
}
