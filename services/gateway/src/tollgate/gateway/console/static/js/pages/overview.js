// Overview: balance, spend and requests over the last 30 days (billing's daily rollup), budget
// status, the top models with latency and success rate (analytics' usage report), latency
// percentiles and the most recent failed requests (analytics' latency and errors routes:
// every member of the organisation may read them).
import { api, probe } from "../api.js";
import { card, chart, credits, empty, h, int, isoDay, microsToCredits, notice, table, when } from "../ui.js";

export const title = "Overview";
const DAYS = 30;

export async function render(root) {
  const end = new Date();
  const start = new Date(end.getTime() - (DAYS - 1) * 86_400_000);
  const range = `start_date=${isoDay(start)}&end_date=${isoDay(end)}`;
  const [wallet, stats, usage, budgets, latency, errors] = await Promise.all([
    api("/v1/credits"),
    api(`/cost/stats?${range}&granularity=daily`),
    api(`/analytics/usage?${range}&group_by=model`).catch((err) => ({ error: err })),
    probe("/cost/budget"),
    api(`/analytics/latency?${range}`).catch((err) => ({ error: err })),
    api("/analytics/errors?limit=10").catch((err) => ({ error: err })),
  ]);
  const requests = stats.daily_stats.reduce((sum, d) => sum + d.requests, 0);
  const budget = stats.budget_status;
  root.replaceChildren(
    h("div", { class: "cards" },
      card("Balance", credits(wallet.balance), `available ${credits(microsToCredits(wallet.available_micros))}, held ${credits(microsToCredits(wallet.held_micros))}`, "balance"),
      card(`Spend, last ${DAYS} days`, credits(stats.total_cost), `inference ${credits(stats.breakdown.inference)}, training ${credits(stats.breakdown.training)}`, "spend"),
      card(`Requests, last ${DAYS} days`, int(requests), null, "requests"),
      card("Monthly budget", budget.monthly_budget === null ? "none" : `${budget.percentage_used}%`,
        budget.monthly_budget === null ? "no budget set" : `${credits(budget.spent)} of ${credits(budget.monthly_budget)} spent`, "budget"),
      usage.error ? null : card("Success rate", `${(usage.success_rate * 100).toFixed(1)}%`,
        `average latency ${Math.round(usage.average_response_time_ms)} ms`, "success"),
      ...latencyCards(latency)),
  );
  const labels = stats.daily_stats.map((d) => d.date.slice(5));
  if (requests === 0) {
    root.append(h("h2", {}, "Activity"), empty("No requests in the last 30 days yet. Try the Playground, or call /v1/chat/completions with a key."));
  } else {
    root.append(h("div", { class: "charts" },
      chart("Spend per day (credits)", "line", labels, [{ label: "credits", data: stats.daily_stats.map((d) => d.cost), borderColor: "#1f5f8b", backgroundColor: "#1f5f8b33", fill: true }]),
      chart("Requests per day", "bar", labels, [{ label: "requests", data: stats.daily_stats.map((d) => d.requests), backgroundColor: "#4f8f5b" }])));
  }
  if (latency.error) root.append(notice("error", `Latency could not load: ${latency.error.message}`));
  root.append(h("h2", {}, "Top models"));
  if (usage.error) root.append(notice("error", `Usage could not load: ${usage.error.message}`));
  else if (!usage.breakdown.length) root.append(empty("No model has been used yet."));
  else {
    const top = [...usage.breakdown].sort((a, b) => b.cost - a.cost).slice(0, 8);
    root.append(table([
      { label: "Model", value: (r) => r.model_id },
      { label: "Requests", value: (r) => int(r.requests), num: true },
      { label: "Tokens", value: (r) => int(r.tokens), num: true },
      { label: "Avg latency (ms)", value: (r) => Math.round(r.avg_response_time), num: true },
      { label: "Cost", value: (r) => credits(r.cost), num: true },
    ], top));
  }
  root.append(h("h2", {}, "Recent errors"), errorsTable(errors));
  root.append(h("h2", {}, "Budgets"));
  const rows = budgets && Array.isArray(budgets.data) ? budgets.data : [];
  if (!rows.length) root.append(empty("No budget is set for this organisation."));
  else {
    root.append(table([
      { label: "Scope", value: (b) => (b.key_id ? `key ${b.key_id}` : "organisation") },
      { label: "Period", value: (b) => b.period },
      { label: "Limit", value: (b) => credits(b.monthly_budget), num: true },
      { label: "Spent", value: (b) => credits(b.spent), num: true },
      { label: "Used", value: (b) => `${b.percentage_used}%`, num: true },
      { label: "Hard limit", value: (b) => (b.hard_limit ? "yes" : "no") },
    ], rows));
  }
}

const ms = (value) => (value === null || value === undefined ? "—" : `${Math.round(value).toLocaleString()} ms`);

// p50 / p90 / p99 of the answered requests over the 30 days (estimates from analytics' buckets), as
// cards: test_console_browser.py counts the Overview's two charts.
function latencyCards(latency) {
  if (latency.error) return [];
  const sub = latency.count ? `of ${int(latency.count)} answered requests, ${DAYS} days` : "no answered requests yet";
  return [["p50", "p50_ms"], ["p90", "p90_ms"], ["p99", "p99_ms"]].map(([name, field]) =>
    card(`Latency ${name}`, ms(latency[field]), sub, `latency-${name}`));
}

// The organisation's latest failed requests: when, which model and key, what failed; never content.
function errorsTable(errors) {
  if (errors.error) return notice("error", `Recent errors could not load: ${errors.error.message}`);
  if (!errors.data.length) return empty("No failed requests. Requests the upstream model fails or times out appear here.");
  return h("div", { id: "recent-errors" }, table([
    { label: "Time", value: (e) => when(e.created_at) },
    { label: "Model", value: (e) => e.model },
    { label: "Key", value: (e) => `#${e.key_id}` },
    { label: "Status", value: (e) => h("span", { class: "badge bad" }, e.status) },
    { label: "What happened", value: (e) => e.message },
    { label: "Request id", value: (e) => h("code", {}, e.request_id) },
  ], errors.data, errors.has_more ? "The 10 most recent; older ones through /analytics/errors?before=…" : null));
}
