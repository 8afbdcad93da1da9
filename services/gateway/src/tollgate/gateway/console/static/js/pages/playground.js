// Playground: chat with a model this credential may call (/v1/models lists only those), streamed
// from /v1/chat/completions, with the tokens and cost of each answer and the balance as it falls.
import { api, send } from "../api.js";
import { busy, credits, empty, h, microsToCredits, notice } from "../ui.js";

export const title = "Playground";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function render(root) {
  const [models, wallet] = await Promise.all([api("/v1/models"), api("/v1/credits")]);
  if (!models.data.length) {
    root.replaceChildren(empty("No model is available to you. An admin can add models or grant them to your group."));
    return;
  }
  const model = h("select", { name: "model", id: "pg-model" },
    models.data.map((m) => h("option", { value: m.id, "data-provider": m.owned_by }, m.id)));
  const maxTokens = h("input", { type: "number", name: "max_tokens", min: 1, max: 4096, value: 128 });
  const prompt = h("textarea", { name: "prompt", id: "pg-prompt", rows: 3, required: true,
    placeholder: "Ask something. Ctrl+Enter sends." });
  const submit = h("button", { type: "submit", id: "pg-send" }, "Send");
  const clear = h("button", { type: "button", class: "secondary", onclick: () => { history.length = 0; chat.replaceChildren(); } }, "Clear");
  const balance = h("span", { id: "pg-balance" }, credits(wallet.balance));
  const chat = h("div", { class: "chat", id: "pg-chat", "aria-live": "polite" });
  const status = h("div");
  const history = [];
  let balanceMicros = wallet.balance_micros;

  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  const form = h("form", { class: "stack", id: "pg-form", onsubmit: async (e) => {
    e.preventDefault();
    const text = prompt.value.trim();
    if (!text) return;
    status.replaceChildren();
    await busy(submit, "Answering…", () => ask(text));
  } }, h("div", { class: "row" }, h("label", {}, "Model", model), h("label", {}, "Max tokens", maxTokens)),
  h("label", {}, "Message", prompt), h("div", { class: "row" }, submit, clear));
  root.replaceChildren(h("p", {}, "Balance: ", h("strong", {}, balance), " credits"), form, status, chat);
  // #/playground?model=<id> (the Fine-tuning page's "Try it") chooses that model
  const wanted = new URLSearchParams(location.hash.split("?")[1] || "").get("model");
  if (wanted && models.data.some((m) => m.id === wanted)) model.value = wanted;
  else if (wanted) status.replaceChildren(notice("warn", `The model ${wanted} is not available to you (yet): the gateway lists a new fine-tuned model within seconds; reload in a moment.`));

  async function ask(text) {
    const option = model.selectedOptions[0];
    history.push({ role: "user", content: text });
    chat.append(h("div", { class: "msg user" }, text));
    prompt.value = "";
    const out = h("span", { class: "answer" });
    const meta = h("span", { class: "meta" }, "streaming…");
    const bubble = h("div", { class: "msg assistant" }, out, meta);
    chat.append(bubble);
    const before = balanceMicros;
    let usage = null;
    try {
      const resp = await send("/v1/chat/completions", { method: "POST", body: {
        model: option.value, messages: history, stream: true, max_tokens: Number(maxTokens.value) || 128,
        stream_options: { include_usage: true },
      } });
      if (!resp.ok) {
        const body = await resp.json().catch(() => null);
        throw new Error((body && body.error && (body.error.message || body.error)) || `HTTP ${resp.status}`);
      }
      usage = await readStream(resp, (delta) => out.append(delta));
    } catch (err) {
      history.pop();
      bubble.remove();
      status.replaceChildren(notice("error", err.message));
      return;
    }
    history.push({ role: "assistant", content: out.textContent });
    const pricing = await api(`/models/${encodeURIComponent(option.dataset.provider)}/${encodeURIComponent(option.value)}`).catch(() => null);
    meta.textContent = describe(usage, pricing);
    const after = await settledBalance(before);
    meta.textContent += after === null ? " · balance not settled yet"
      : ` · balance ${credits(microsToCredits(before), 6)} → ${credits(microsToCredits(after), 6)}`;
  }

  // billing settles the request from its usage event (Kafka): wait a little for the balance to move
  async function settledBalance(before) {
    for (let i = 0; i < 20; i += 1) {
      const w = await api("/v1/credits");
      balance.textContent = credits(w.balance);
      if (w.balance_micros !== before) {
        balanceMicros = w.balance_micros;
        return w.balance_micros;
      }
      await sleep(500);
    }
    return null;
  }
}

function describe(usage, pricing) {
  if (!usage) return "the provider reported no token counts";
  const tokens = `${usage.prompt_tokens} in, ${usage.completion_tokens} out`;
  if (!pricing || !pricing.pricing) return `${tokens} tokens`;
  const p = pricing.pricing;
  const cost = (usage.prompt_tokens / 1000) * p.input + (usage.completion_tokens / 1000) * p.output + (p.request || 0);
  return `${tokens} tokens · ${credits(cost, 6)} credits at list price`;
}

// Server-sent events of OpenAI's chat stream: appends each content delta, answers the usage (if any).
async function readStream(resp, onDelta) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 1);
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") return usage;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message || "The stream failed.");
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices || []) {
        if (choice.delta && choice.delta.content) onDelta(choice.delta.content);
      }
    }
  }
  return usage;
}
