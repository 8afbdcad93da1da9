// The form that adds or edits a catalog model (POST /admin/model/save, platform admins): provider and
// upstream (Bedrock's region, endpoint and credentials), prices, the model's own rate limits, fallbacks
// and deployments. Save replaces the model's whole config, so an edit starts from the config the list
// returned (`config`: every non-secret key) and sends back every key this form does not show untouched
// (the "Other config keys" JSON); secrets are write-only (empty: the stored one is kept). The route is
// the judge of every value: its refusal is shown in plain words next to the form, at the field it names.
import { api } from "../api.js";
import { busy, h, notice } from "../ui.js";

export const PROVIDERS = ["openai-compatible", "openai", "anthropic", "bedrock-converse"];
const PRICES = [
  ["price_in", "Input, per 1M tokens"], ["price_out", "Output, per 1M tokens"],
  ["price_cached_in", "Cached input, per 1M (empty: input price)"],
  ["price_cache_write", "Cache write, per 1M (empty: input price)"],
  ["price_reasoning", "Reasoning, per 1M (empty: output price)"],
  ["price_embedding", "Embedding, per 1M (empty: input price)"],
  ["price_request", "Per request"], ["price_image", "Per image"],
];
const LIMITS = [["rpm", "Requests per minute"], ["tpm", "Tokens per minute"], ["tpd", "Tokens per day"]];
const BEDROCK = "bedrock-converse";
// config keys this form edits itself (with the aliases save accepts); every other key is shown as JSON
const MANAGED = new Set(["base_url", "baseUrl", "model", "modelId", "upstream_model", "api_key", "apiKey",
  "max_tokens", "fallbacks", "weight", "priority", "rpm", "tpm", "tpd", "deployments",
  "region", "endpoint", "accessKeyId", "secretAccessKey", "sessionToken"]);
const HINTS = {
  "openai-compatible": "Calls go to {base URL}/chat/completions with the upstream model's name and the key as a Bearer token.",
  openai: "Calls go to {base URL}/chat/completions with the upstream model's name and the key as a Bearer token.",
  anthropic: "Anthropic's Messages API at {base URL}/messages (e.g. https://api.anthropic.com/v1), key sent as x-api-key, anthropic-version 2023-06-01. Anthropic needs a max tokens on every request: the default max tokens is sent when the caller gives none.",
  [BEDROCK]: "Amazon Bedrock's Converse API, signed with SigV4: the upstream model is the Bedrock modelId. The credentials and the region are stored encrypted and never shown; leave them empty to keep the stored ones (a new region re-signs them).",
};

// An integer stays a number; anything else goes as typed, so the route refuses it in its own words.
const number = (text) => (/^-?\d+$/.test(text.trim()) ? Number(text.trim()) : text.trim());
const value = (v) => (v === null || v === undefined ? "" : String(v));

function field(label, name, attrs = {}) {
  const input = h("input", { name, ...attrs });
  return { input, label: h("label", { "data-field": name }, label, input) };
}

function providerSelect(name, selected, blankLabel) {
  return h("select", { name },
    blankLabel ? h("option", { value: "" }, blankLabel) : null,
    PROVIDERS.map((p) => h("option", { value: p, selected: p === selected }, p)));
}

// Bedrock's region, endpoint and credentials (write-only: empty keeps the stored ones), for the model's
// own upstream (`name` as the route names them) or a deployment's (`dep_` before each name).
function bedrockFields(prefix, saved, hasSecret) {
  const secret = (label, name) => field(label, prefix + name, { type: "password", autocomplete: "off",
    placeholder: hasSecret ? "stored: leave empty to keep" : "none" });
  return {
    region: field("Region", `${prefix}region`, { value: value(saved.region), placeholder: "us-east-1" }),
    endpoint: field("Endpoint", `${prefix}endpoint`, { value: value(saved.endpoint), placeholder: "the region's bedrock-runtime" }),
    accessKeyId: secret("Access key ID", "accessKeyId"),
    secretAccessKey: secret("Secret access key", "secretAccessKey"),
    sessionToken: field("Session token (optional)", `${prefix}sessionToken`, { type: "password", autocomplete: "off", placeholder: "none" }),
  };
}

// the Bedrock keys typed into bedrockFields, onto `config`
function readBedrock(fields, config) {
  for (const [key, f] of Object.entries(fields)) {
    const text = key === "region" || key === "endpoint" ? f.input.value.trim() : f.input.value;
    if (text) config[key] = text;
  }
}

// A stored Bedrock deployment's region and endpoint: as listed, or (saved before the list named its
// region) read off its base URL, the region's bedrock-runtime host or a custom endpoint.
function bedrockPlace(d) {
  if (!d) return {};
  if (d.region) {
    const regional = `https://bedrock-runtime.${d.region}.amazonaws.com`;
    return { region: d.region, endpoint: d.base_url && d.base_url !== regional ? d.base_url : "" };
  }
  const host = /^https:\/\/bedrock-runtime\.([a-z0-9-]+)\.amazonaws\.com$/.exec(d.base_url || "");
  return host ? { region: host[1] } : { endpoint: d.base_url || "" };
}

// One of config.deployments: its label, dialect, upstream, key (kept when left empty) and share; a
// Bedrock one (its own provider, or the model's when it names none) has region and credentials instead
// of a base URL and key. modelProvider() is the model's provider as the form shows it now.
function deploymentRow(d, onRemove, modelProvider) {
  const f = {
    name: field("Name", "dep_name", { value: value(d && d.name), maxlength: 64, placeholder: "e.g. b" }),
    base_url: field("Base URL", "dep_base_url", { value: value(d && d.base_url), placeholder: "e.g. https://b.example/v1" }),
    model: field("Upstream model", "dep_model", { value: value(d && d.model), placeholder: "the model's" }),
    api_key: field("API key", "dep_api_key", { type: "password", autocomplete: "off",
      placeholder: d && d.has_api_key ? "stored: leave empty to keep" : "none" }),
    weight: field("Weight", "dep_weight", { inputmode: "numeric", value: value(d ? d.weight : 1) }),
    priority: field("Priority", "dep_priority", { inputmode: "numeric", value: value(d ? d.priority : 0) }),
  };
  const bedrock = bedrockFields("dep_", bedrockPlace(d && d.provider === BEDROCK ? d : null), Boolean(d && d.has_api_key));
  const bedrockRow = h("div", { class: "row dep-bedrock" }, Object.values(bedrock).map((b) => b.label));
  const provider = providerSelect("dep_provider", d && d.provider, "the model's provider");
  const remove = h("button", { type: "button", class: "danger" }, "Remove");
  const row = h("fieldset", { class: "deployment" }, h("legend", {}, "Deployment"),
    h("div", { class: "row" }, f.name.label, h("label", { "data-field": "dep_provider" }, "Provider", provider),
      f.base_url.label, f.model.label, f.api_key.label, f.weight.label, f.priority.label, remove),
    bedrockRow);
  const isBedrock = () => (provider.value || modelProvider()) === BEDROCK;
  row.showProvider = () => {
    const on = isBedrock();
    bedrockRow.hidden = !on;
    f.base_url.label.hidden = on;
    f.api_key.label.hidden = on;
  };
  provider.addEventListener("change", row.showProvider);
  remove.addEventListener("click", () => onRemove(row));
  row.read = () => {
    const out = { name: f.name.input.value.trim() || undefined };
    if (provider.value) out.provider = provider.value;
    if (isBedrock()) {
      readBedrock(bedrock, out);
    } else {
      out.base_url = f.base_url.input.value.trim();
      if (f.api_key.input.value) out.api_key = f.api_key.input.value;
    }
    if (f.model.input.value.trim()) out.model = f.model.input.value.trim();
    if (f.weight.input.value.trim()) out.weight = number(f.weight.input.value);
    if (f.priority.input.value.trim()) out.priority = number(f.priority.input.value);
    return out;
  };
  row.showProvider();
  return row;
}

// model: a row of /admin/model/list to edit, or null to add one. onSaved(saved) after the route agreed.
export function modelForm(model, onSaved, onCancel) {
  const m = model || {};
  const top = {
    name: field("Name (what clients call)", "name", { value: value(m.name), maxlength: 200, required: true }),
    base_url: field("Base URL", "base_url", { value: value(m.base_url), placeholder: "e.g. https://api.example.com/v1" }),
    model: field("Upstream model", "model", { value: value(m.model), placeholder: "default: the name" }),
    api_key: field("API key", "api_key", { type: "password", autocomplete: "off",
      placeholder: m.has_api_key ? "stored: leave empty to keep" : "none" }),
    max_tokens: field("Default max tokens", "max_tokens", { inputmode: "numeric", value: value(m.max_tokens_default), placeholder: "the gateway's default" }),
    fallbacks: field("Fallbacks (model names, in order, comma-separated)", "fallbacks",
      { value: (m.fallbacks || []).join(", "), placeholder: "none" }),
    weight: field("Weight of this upstream", "weight", { inputmode: "numeric", value: value(model ? m.weight : 1) }),
    priority: field("Priority of this upstream", "priority", { inputmode: "numeric", value: value(model ? m.priority : 0) }),
  };
  const provider = providerSelect("provider", m.provider || "openai-compatible");
  const saved = m.config || {};
  const bedrock = bedrockFields("", saved, Boolean(m.has_api_key));
  const bedrockSet = h("fieldset", { class: "bedrock" }, h("legend", {}, "Amazon Bedrock"),
    h("div", { class: "row" }, Object.values(bedrock).map((f) => f.label)));
  const other = Object.fromEntries(Object.entries(saved).filter(([k]) => !MANAGED.has(k)));
  const otherInput = h("textarea", { name: "other_config", rows: 3, spellcheck: "false", placeholder: "{}" },
    Object.keys(other).length ? JSON.stringify(other, null, 2) : "");
  const otherLabel = h("label", { "data-field": "other_config" },
    "Other config keys (JSON object; kept as they are, e.g. provider-specific settings)", otherInput);
  const hint = h("p", { class: "muted provider-hint" });
  const showProvider = () => {
    const isBedrock = provider.value === BEDROCK;
    bedrockSet.hidden = !isBedrock;
    top.base_url.label.hidden = isBedrock;
    top.api_key.label.hidden = isBedrock;
    hint.textContent = HINTS[provider.value] || "";
    [...rows.children].forEach((row) => row.showProvider());
  };
  provider.addEventListener("change", showProvider);
  const prices = PRICES.map(([name, label]) => field(label, name, { inputmode: "decimal", value: value(m[name]) }));
  const limits = LIMITS.map(([name, label]) => field(label, name, { inputmode: "numeric", value: value(m[name]), placeholder: "not limited" }));
  const rows = h("div", { class: "deployments" });
  const addRow = (d) => rows.append(deploymentRow(d, (row) => row.remove(), () => provider.value));
  (m.deployments || []).forEach(addRow);
  const addDeployment = h("button", { type: "button", class: "secondary", id: "add-deployment" }, "Add a deployment");
  addDeployment.addEventListener("click", () => {
    addRow(null);
    rows.lastElementChild.querySelector("input").focus();
  });
  const error = h("div", { class: "form-error", "aria-live": "assertive" });
  const submit = h("button", { type: "submit" }, model ? "Save changes" : "Add model");
  const cancel = h("button", { type: "button", class: "secondary", onclick: onCancel }, "Cancel");

  // the other keys as typed: a JSON object, or a refusal shown at the field (nothing is sent)
  function otherKeys() {
    const text = otherInput.value.trim();
    let parsed;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = null;
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw Object.assign(new Error("must be a JSON object, e.g. {\"key\": \"value\"}."), { param: "other_config" });
    }
    for (const key of Object.keys(parsed)) {
      if (MANAGED.has(key)) {
        throw Object.assign(new Error(`${key} has its own field in this form.`), { param: "other_config" });
      }
    }
    return parsed;
  }

  function body() {
    const config = otherKeys();
    if (provider.value === BEDROCK) {
      readBedrock(bedrock, config);
    } else {
      config.base_url = top.base_url.input.value.trim();
    }
    if (top.model.input.value.trim()) config.model = top.model.input.value.trim();
    if (provider.value !== BEDROCK && top.api_key.input.value) config.api_key = top.api_key.input.value;
    if (top.max_tokens.input.value.trim()) config.max_tokens = number(top.max_tokens.input.value);
    const fallbacks = top.fallbacks.input.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (fallbacks.length) config.fallbacks = fallbacks;
    for (const key of ["weight", "priority"]) {
      if (top[key].input.value.trim()) config[key] = number(top[key].input.value);
    }
    LIMITS.forEach(([name], i) => {
      if (limits[i].input.value.trim()) config[name] = number(limits[i].input.value);
    });
    const deployments = [...rows.children].map((row) => row.read());
    if (deployments.length) config.deployments = deployments;
    const out = { name: top.name.input.value.trim(), provider: provider.value, config };
    if (model) Object.assign(out, { id: model.id, group_id: model.group_id, multiple: model.multiple });
    PRICES.forEach(([name], i) => {
      if (prices[i].input.value.trim()) out[name] = prices[i].input.value.trim();
    });
    return out;
  }

  // "config.deployments[1].weight" → the weight input of the second deployment row
  function inputFor(param) {
    if (!param) return null;
    const path = param.replace(/^config\./, "");
    const dep = /^deployments\[(\d+)\](?:\.(\w+))?/.exec(path);
    if (dep) {
      const row = rows.children[Number(dep[1])];
      let name = { baseUrl: "base_url", apiKey: "api_key", modelId: "model", upstream_model: "model" }[dep[2]] || dep[2];
      if (name === "base_url" && row && !row.querySelector(".dep-bedrock").hidden) name = "endpoint";
      return row ? row.querySelector(`[name="dep_${name}"]`) || row.querySelector("input") : null;
    }
    const name = { baseUrl: "base_url", apiKey: "api_key", modelId: "model", upstream_model: "model" }[path] || path;
    if (name === "base_url" && provider.value === BEDROCK) return bedrock.endpoint.input;
    const own = form.querySelector(`[name="${name}"]`);
    // a config key without a field of its own (config.guardrail.x) → the JSON of the other keys
    if (own || !param.startsWith("config.")) return own;
    return MANAGED.has(path.split(/[.[]/)[0]) ? null : otherInput;
  }

  function clearErrors() {
    error.replaceChildren();
    form.querySelectorAll(".field-error").forEach((e) => e.remove());
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  }

  function showError(err) {
    const input = inputFor(err.param);
    const where = input ? input.closest("label") : null;
    const label = where ? where.firstChild.textContent : null;
    error.replaceChildren(notice("error", label ? `${label}: ${err.message}` : err.message));
    if (input) {
      const id = `err-${Math.random().toString(36).slice(2)}`;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", id);
      where.append(h("span", { class: "field-error", id }, err.message));
      input.focus();
    }
  }

  const form = h("form", { class: "model-form", id: "model-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    clearErrors();
    try {
      const request = body();
      const stored = await busy(submit, "Saving…", () => api("/admin/model/save", { method: "POST", body: request }));
      onSaved(stored);
    } catch (err) {
      showError(err);
    }
  } },
  h("fieldset", {}, h("legend", {}, "Model and upstream"), h("div", { class: "row" },
    top.name.label, h("label", { "data-field": "provider" }, "Provider", provider),
    top.base_url.label, top.model.label, top.api_key.label, top.max_tokens.label), hint),
  bedrockSet,
  h("fieldset", {}, h("legend", {}, "Prices (credits)"), h("div", { class: "row" }, prices.map((p) => p.label))),
  h("fieldset", {}, h("legend", {}, "The model's own rate limits (all keys together)"),
    h("div", { class: "row" }, limits.map((l) => l.label))),
  h("fieldset", {}, h("legend", {}, "Routing"), h("div", { class: "row" }, top.fallbacks.label, top.weight.label, top.priority.label),
    h("p", { class: "muted" }, "Deployments serve the same model name from other upstreams: a higher weight takes a larger share, a lower priority goes first. A deployment renamed here loses its stored key."),
    rows, addDeployment),
  h("fieldset", {}, h("legend", {}, "Other settings"), otherLabel),
  error, h("div", { class: "row" }, submit, cancel));
  showProvider();
  return form;
}
