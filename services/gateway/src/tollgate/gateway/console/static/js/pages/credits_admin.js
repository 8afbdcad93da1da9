// Refunds and adjustments (platform admins): POST /admin/payment/refund and /admin/payment/adjust.
// Each form carries one Idempotency-Key for what it holds: submitting the same form again (a double
// press, a retry after a lost answer) sends the same key, and billing answers the first result
// (`replayed: true`) instead of moving money twice. Changing any field makes a new key.
import { api } from "../api.js";
import { credits, h, microsToCredits, notice } from "../ui.js";

const fmt = (micros) => credits(microsToCredits(micros), 6);

// A form whose submissions share an Idempotency-Key until one of its fields changes.
function idempotentForm(attrs, fields, submit, send) {
  const status = h("div", { "aria-live": "polite" });
  let key = crypto.randomUUID();
  let inFlight = 0; // a second submission while one is out goes too, with the same key
  const label = submit.textContent;
  const form = h("form", { ...attrs, novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const sent = key;
    inFlight += 1;
    submit.disabled = true;
    submit.textContent = "Sending…";
    try {
      status.replaceChildren(await send(sent));
    } catch (err) {
      status.replaceChildren(notice("error", err.message));
    } finally {
      inFlight -= 1;
      if (!inFlight) {
        submit.disabled = false;
        submit.textContent = label;
      }
    }
  } }, fields, submit);
  form.addEventListener("input", () => {
    key = crypto.randomUUID();
  });
  form.dataset.idempotent = "1";
  return { form, status, element: h("div", {}, form, status) };
}

export function refundForm(onDone) {
  const payment = h("input", { name: "payment_id", inputmode: "numeric", required: true, placeholder: "#" });
  const amount = h("input", { name: "amount", inputmode: "decimal", placeholder: "all that is left" });
  const reason = h("input", { name: "reason", maxlength: 500, placeholder: "optional" });
  const submit = h("button", { type: "submit" }, "Refund");
  const f = idempotentForm({ class: "row", id: "refund-form" },
    [h("label", {}, "Payment #", payment), h("label", {}, "Amount (payment currency)", amount), h("label", {}, "Reason", reason)],
    submit, async (key) => {
      const body = { payment_id: /^\d+$/.test(payment.value.trim()) ? Number(payment.value.trim()) : payment.value.trim(), reason: reason.value };
      if (amount.value.trim()) body.amount = amount.value.trim();
      const r = await api("/admin/payment/refund", { method: "POST", body, headers: { "Idempotency-Key": key } });
      if (onDone) await onDone(r);
      const balance = r.balance_micros === null ? "" : ` The organisation's balance is ${fmt(r.balance_micros)}.`;
      return notice(r.replayed ? "warn" : "ok", r.replayed
        ? `Refund #${r.id} of payment #${r.payment_id} was already recorded: nothing more was taken back.${balance}`
        : `Refund #${r.id} of payment #${r.payment_id}: ${fmt(r.amount_micros)} returned, ${fmt(r.credits_micros)} credits taken back (payment ${r.payment_status}).${balance}`);
    });
  // the payment history's "Refund" buttons fill in the payment
  f.prefill = (id) => {
    payment.value = String(id);
    payment.dispatchEvent(new Event("input", { bubbles: true }));
    amount.focus();
  };
  return f;
}

export function adjustForm(onDone) {
  const kind = h("select", { name: "target" },
    h("option", { value: "api_key" }, "an API key's organisation"), h("option", { value: "org_id" }, "an organisation id"));
  const target = h("input", { name: "target_value", autocomplete: "off", required: true, placeholder: "tg_…" });
  kind.addEventListener("change", () => {
    target.type = kind.value === "api_key" ? "password" : "text";
    target.placeholder = kind.value === "api_key" ? "tg_…" : "org_…";
  });
  target.type = "password";
  const amount = h("input", { name: "amount", inputmode: "decimal", required: true, placeholder: "+5 or -2.5" });
  const reason = h("input", { name: "reason", maxlength: 500, required: true, placeholder: "why (kept in the ledger)" });
  const submit = h("button", { type: "submit" }, "Adjust");
  const f = idempotentForm({ class: "row", id: "adjust-form" },
    [h("label", {}, "Credit", kind), h("label", {}, "Key or organisation", target), h("label", {}, "Credits (+ or −)", amount), h("label", {}, "Reason", reason)],
    submit, async (key) => {
      const body = { [kind.value]: target.value.trim(), amount: amount.value.trim().replace("−", "-"), reason: reason.value };
      const a = await api("/admin/payment/adjust", { method: "POST", body, headers: { "Idempotency-Key": key } });
      if (onDone) await onDone(a);
      return notice(a.replayed ? "warn" : "ok", a.replayed
        ? `Adjustment #${a.id} was already recorded: the balance did not move again (it is ${fmt(a.balance_micros)}).`
        : `Adjustment #${a.id}: ${a.amount_micros > 0 ? "+" : ""}${fmt(a.amount_micros)} credits for ${a.org_id}; its balance is ${fmt(a.balance_micros)}.`);
    });
  return f;
}
