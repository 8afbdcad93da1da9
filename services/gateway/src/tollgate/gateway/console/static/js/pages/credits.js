// Credits: the balance, buying a package through the configured payment provider, the payment
// history (organisation owners and admins, platform admins), refunds and adjustments (platform
// admins), budgets, the low-balance alert, alert webhooks and deliveries (credits_alerts.js).
import { api } from "../api.js";
import { busy, card, credits, empty, h, microsToCredits, notice, table, when } from "../ui.js";
import { adjustForm, refundForm } from "./credits_admin.js";
import { costSettings } from "./credits_alerts.js";

export const title = "Credits";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const STATUS_CLASS = { succeeded: "ok", failed: "bad", refunded: "bad", pending: "pending" };

export async function render(root, ctx) {
  const [wallet, packages] = await Promise.all([api("/v1/credits"), api("/v1/credits/packages")]);
  const balance = h("div", { class: "cards" });
  const status = h("div", { "aria-live": "polite" });
  const history = h("div");
  root.replaceChildren(balance, h("h2", {}, "Buy credits"), status, packageGrid(packages.data));
  showBalance(wallet);
  const afterMoney = async () => {
    showBalance(await api("/v1/credits"));
    await refreshHistory();
  };
  const refunds = ctx.isPlatformAdmin ? refundForm(afterMoney) : null;
  if (ctx.isPlatformAdmin) {
    root.append(h("h2", {}, "Recharge a key (platform admin)"), rechargeForm(),
      h("h2", {}, "Refund a payment (platform admin)"),
      h("p", { class: "muted" }, "Returns money of a succeeded payment (all that is left when no amount is given) and takes back its credits in proportion, bonus included. Returning the money at the provider is yours to do."),
      refunds.element,
      h("h2", {}, "Adjust a balance (platform admin)"),
      h("p", { class: "muted" }, "Adds or takes away credits with a reason kept in the ledger. Sending the same form twice moves the balance once."),
      adjustForm(afterMoney).element);
  }
  if (ctx.canSeePayments) {
    root.append(h("h2", {}, "Payment history"), history);
    await refreshHistory();
  } else {
    root.append(h("p", { class: "muted" }, "Payment history is shown to the organisation's owners and admins."));
  }
  if (ctx.orgId || ctx.isPlatformAdmin) await appendCostSettings();

  // budgets and alerts of the person's organisation; a platform admin may open any organisation's
  async function appendCostSettings() {
    const holder = h("div");
    let settings = costSettings(ctx, ctx.orgId);
    holder.append(settings);
    if (ctx.isPlatformAdmin) {
      const org = h("input", { name: "org_id", value: ctx.orgId || "", required: true, placeholder: "org_…" });
      const open = h("button", { type: "submit", class: "secondary" }, "Open");
      const failed = h("div", { "aria-live": "polite" });
      root.append(h("h2", {}, "Budgets and alerts"), h("form", { class: "row", id: "cost-org-form", onsubmit: async (e) => {
        e.preventDefault();
        failed.replaceChildren();
        const next = costSettings(ctx, org.value.trim());
        try {
          await busy(open, "Opening…", () => next.load());
          settings.replaceWith(next);
          settings = next;
        } catch (err) {
          failed.replaceChildren(notice("error", err.message));
        }
      } }, h("label", {}, "Organisation", org), open), failed);
    }
    root.append(holder);
    await settings.load();
  }

  function showBalance(w) {
    balance.replaceChildren(card("Balance", credits(w.balance), `available ${credits(microsToCredits(w.available_micros))}`, "balance"));
  }

  function packageGrid(rows) {
    if (!rows.length) return empty("No credit package is on sale. A platform admin adds them on /admin/payment/package/save.");
    return h("div", { class: "packages" }, rows.map((p) => {
      const buy = h("button", { type: "button", "data-package": p.id }, `Buy for ${p.price.toFixed(2)} ${p.currency.toUpperCase()}`);
      buy.addEventListener("click", () => busy(buy, "Opening checkout…", () => purchase(p)));
      return h("div", { class: "card" }, h("div", { class: "label" }, p.name),
        h("div", { class: "value" }, `${credits(p.total_credits, 2)} credits`),
        h("div", { class: "sub" }, p.bonus_credits ? `includes a ${p.bonus_pct}% bonus` : "no bonus"), buy);
    }));
  }

  async function purchase(pkg) {
    status.replaceChildren();
    let bought;
    try {
      bought = await api("/v1/credits/purchase", { method: "POST", body: { package_id: pkg.id },
        headers: { "Idempotency-Key": crypto.randomUUID() } });
    } catch (err) {
      status.replaceChildren(notice("error", err.message));
      return;
    }
    const where = bought.checkout.url
      ? h("a", { href: bought.checkout.url, target: "_blank", rel: "noopener" }, "Pay at the provider")
      : `The ${bought.checkout.provider} provider completes it out of band (payment ${bought.checkout.provider_payment_id}).`;
    const pending = h("div", { class: "notice warn", role: "status", id: "purchase-status", "data-payment": bought.id },
      h("span", { class: "loading" }, `Payment #${bought.id} for ${pkg.name} is pending. `), where);
    status.replaceChildren(pending);
    await refreshHistory();
    watch(bought, pending);
  }

  // Follows an open payment until the provider's webhook credits it (or the page is left).
  async function watch(bought, box) {
    const start = (await api("/v1/credits")).balance_micros;
    for (let i = 0; i < 600 && box.isConnected; i += 1) {
      await sleep(1000);
      const w = await api("/v1/credits").catch(() => null);
      if (!w) continue;
      const row = ctx.canSeePayments ? await findPayment(bought.id) : null;
      if ((row && row.status === "succeeded") || (!ctx.canSeePayments && w.balance_micros >= start + bought.total_micros)) {
        showBalance(w);
        box.replaceWith(notice("ok", `Payment #${bought.id} succeeded: ${credits(microsToCredits(bought.total_micros), 2)} credits added.`));
        await refreshHistory();
        return;
      }
      if (row && row.status === "failed") {
        box.replaceWith(notice("error", `Payment #${bought.id} failed at the provider. Nothing was charged to your credits.`));
        await refreshHistory();
        return;
      }
    }
  }

  async function findPayment(id) {
    const page = await api("/admin/payment/list?limit=50").catch(() => null);
    return page ? page.data.find((p) => p.id === id) : null;
  }

  async function refreshHistory() {
    if (!ctx.canSeePayments) return;
    const page = await api("/admin/payment/list?limit=50");
    if (!page.data.length) {
      history.replaceChildren(empty("No payments yet."));
      return;
    }
    const rows = [...page.data].sort((a, b) => b.id - a.id);
    history.replaceChildren(table([
      { label: "#", value: (p) => p.id, num: true },
      { label: "Date", value: (p) => when(p.created_at) },
      { label: "Kind", value: (p) => (p.method === "admin" ? "recharge" : p.package_id || p.method) },
      ctx.isPlatformAdmin ? { label: "Organisation", value: (p) => p.org_id } : null,
      { label: "Paid", value: (p) => (p.paid_micros ? `${credits(microsToCredits(p.paid_micros), 2)} ${p.currency.toUpperCase()}` : "—"), num: true },
      { label: "Credits", value: (p) => credits(microsToCredits(p.amount_micros + p.bonus_micros), 2), num: true },
      { label: "Refunded", value: (p) => (p.refunded_micros ? credits(microsToCredits(p.refunded_micros), 2) : "—"), num: true },
      { label: "Status", value: (p) => h("span", { class: `badge ${STATUS_CLASS[p.status] || ""}`, "data-status": p.status }, p.status) },
      refunds ? { label: "", value: (p) => (p.status === "succeeded" ? h("button", { type: "button", class: "secondary",
        "data-refund": p.id, "aria-label": `Refund payment ${p.id}`, onclick: () => refunds.prefill(p.id) }, "Refund…") : "") } : null,
    ].filter(Boolean), rows));
  }
}

// Platform admins credit a key's organisation (POST /admin/api-key/recharge, the Bedrock-style
// gateway's recharge): with `apiKey` the form credits that key (the one just shown once), else the
// admin pastes one. Each submission carries its own Idempotency-Key, so a retried request credits once.
export function rechargeForm(apiKey, onDone) {
  const key = apiKey ? null : h("input", { type: "password", name: "api_key", autocomplete: "off", required: true, placeholder: "tg_…" });
  const amount = h("input", { type: "number", name: "balance", min: "0.000001", step: "any", required: true, value: apiKey ? 5 : "" });
  const submit = h("button", { type: "submit" }, "Add credits");
  const status = h("div", { "aria-live": "polite" });
  return h("div", {}, h("form", { class: "row recharge-form", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const done = await busy(submit, "Adding…", () => api("/admin/api-key/recharge", { method: "POST",
        body: { api_key: apiKey || key.value.trim(), balance: amount.value },
        headers: { "Idempotency-Key": crypto.randomUUID() } }));
      status.replaceChildren(notice("ok", `Added ${credits(done.amount, 6)} credits to ${done.org_id}: its balance is ${credits(done.balance, 6)}.`));
      if (key) key.value = "";
      if (onDone) onDone(done);
    } catch (err) {
      status.replaceChildren(notice("error", err.message));
    }
  } }, key ? h("label", {}, "API key", key) : null, h("label", {}, "Credits", amount), submit), status);
}
