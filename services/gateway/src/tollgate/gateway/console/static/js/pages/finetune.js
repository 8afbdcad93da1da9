// Fine-tuning: upload a JSONL training file, start a LoRA job of a base model, and follow a job live
// (status, step, epoch and a loss curve fed by its events), cancel it, and try the fine-tuned model in
// the Playground once it is deployed (docs/training.md). A job is followed over the gateway's /ws
// `training` channel (live.js); only when the socket fails is it polled every 2 s.
// #/finetune lists; #/finetune?job=<id> follows one job.
import { api, ApiError } from "../api.js";
import { lossChart, showResult } from "./finetune_result.js";
import { followTraining } from "./live.js";
import { busy, card, credits, empty, h, int, notice, secondPress, table, when } from "../ui.js";

export const title = "Fine-tuning";

const POLL_MS = 2000;
// /ws carries a job's start, end and deployment (seed 001's training events) and each of its steps
// (`training_progress`): a step fetches the new loss points from the events route at once, a start or
// an end reads the job again. These slow re-reads are only a safety net (a step missed in a reconnect).
const LIVE_RUNNING_MS = 15000;
const LIVE_WAITING_MS = 60000;
const ENDED = new Set(["succeeded", "failed", "cancelled"]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const eventNumber = (id) => Number(String(id).replace("ftevent-", "")) || 0;

export async function render(root) {
  const jobId = new URLSearchParams(location.hash.split("?")[1] || "").get("job");
  if (jobId) await renderJob(root, jobId);
  else await renderHome(root);
}

function statusBadge(status) {
  const kind = status === "succeeded" ? "ok" : status === "failed" || status === "cancelled" ? "bad" : "pending";
  return h("span", { class: `badge ${kind}`, "data-status": status }, status.replace("_", " "));
}

// The 402 of an unaffordable job (and the other refusals) in plain words; the route's own message kept.
function refusal(err) {
  if (err instanceof ApiError && err.status === 402) {
    return `Not enough credits for this job: ${err.message} Buy credits on the Credits page, or train on fewer examples or epochs.`;
  }
  if (err instanceof ApiError && err.status === 429) return `Refused by a quota or rate limit: ${err.message}`;
  return err.message;
}

async function renderHome(root) {
  const [files, jobs, registry] = await Promise.all([
    api("/v1/files?purpose=fine-tune&limit=100"),
    api("/v1/fine_tuning/jobs?limit=50"),
    api("/models?per_page=100").catch(() => ({ models: [] })),
  ]);
  const bases = registry.models.filter((m) => m.type === "base_model");
  const uploadStatus = h("div", { id: "ft-upload-status", "aria-live": "polite" });
  const jobStatus = h("div", { id: "ft-job-status", "aria-live": "polite" });
  const fileList = h("div", { id: "ft-files" });
  const fileChoice = h("select", { name: "training_file", id: "ft-file", required: true });
  let fileRows = files.data;

  function showFiles() {
    fileChoice.replaceChildren(...fileRows.map((f) => h("option", { value: f.id }, `${f.filename} (${f.id})`)));
    if (!fileRows.length) {
      fileList.replaceChildren(empty("No training files yet. Upload a JSONL file above: one example per line."));
      return;
    }
    fileList.replaceChildren(table([
      { label: "File", value: (f) => f.filename },
      { label: "Id", value: (f) => h("code", {}, f.id) },
      { label: "Size (bytes)", value: (f) => int(f.bytes), num: true },
      { label: "Uploaded", value: (f) => when(f.created_at * 1000) },
    ], fileRows));
  }

  const fileInput = h("input", { type: "file", name: "file", id: "ft-file-input", accept: ".jsonl,application/jsonl,application/json", required: true });
  const uploadButton = h("button", { type: "submit" }, "Upload");
  const uploadForm = h("form", { class: "row", id: "ft-upload", onsubmit: async (e) => {
    e.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    const form = new FormData();
    form.append("purpose", "fine-tune");
    form.append("file", file, file.name);
    try {
      const made = await busy(uploadButton, "Checking every line…", () => api("/v1/files", { method: "POST", body: form }));
      uploadStatus.replaceChildren(notice("ok", `Uploaded ${made.filename} (${made.id}): every line is a valid example.`));
      fileInput.value = "";
      fileRows = [made, ...fileRows.filter((f) => f.id !== made.id)];
      showFiles();
      fileChoice.value = made.id;
    } catch (err) {
      uploadStatus.replaceChildren(notice("error", `The file was refused, nothing was stored. ${err.message}`));
    }
  } }, h("label", {}, "Training file (JSONL)", fileInput), uploadButton);

  const model = h("select", { name: "model", id: "ft-model", required: true },
    bases.map((m) => h("option", { value: m.name }, `${m.name}${m.pricing && m.pricing.training !== undefined
      ? ` · ${credits(m.pricing.training)} credits / 1M trained tokens` : ""}`)));
  const epochs = h("input", { type: "number", name: "n_epochs", min: 1, max: 50, placeholder: "auto" });
  const batch = h("input", { type: "number", name: "batch_size", min: 1, max: 256, placeholder: "auto" });
  const lr = h("input", { type: "number", name: "learning_rate_multiplier", min: 0.0001, max: 100, step: "any", placeholder: "auto" });
  const suffix = h("input", { name: "suffix", maxlength: 40, pattern: "[A-Za-z0-9_\\-]*", placeholder: "optional, e.g. support-bot" });
  const start = h("button", { type: "submit" }, "Start job");
  const jobForm = h("form", { class: "stack", id: "ft-create", onsubmit: async (e) => {
    e.preventDefault();
    const hyperparameters = {};
    if (epochs.value) hyperparameters.n_epochs = Number(epochs.value);
    if (batch.value) hyperparameters.batch_size = Number(batch.value);
    if (lr.value) hyperparameters.learning_rate_multiplier = Number(lr.value);
    const body = { model: model.value, training_file: fileChoice.value, hyperparameters };
    if (suffix.value) body.suffix = suffix.value;
    try {
      const job = await busy(start, "Starting…", () => api("/v1/fine_tuning/jobs", { method: "POST", body }));
      location.hash = `#/finetune?job=${encodeURIComponent(job.id)}`;
    } catch (err) {
      jobStatus.replaceChildren(notice("error", refusal(err)));
    }
  } },
  h("label", {}, "Base model", model), h("label", {}, "Training file", fileChoice),
  h("div", { class: "row" }, h("label", {}, "Epochs", epochs), h("label", {}, "Batch size", batch),
    h("label", {}, "Learning rate ×", lr)),
  h("label", {}, "Model name suffix", suffix), start);

  const jobList = jobs.data.length
    ? table([
      { label: "Job", value: (j) => h("a", { href: `#/finetune?job=${encodeURIComponent(j.id)}`, "data-job": j.id }, j.id) },
      { label: "Base", value: (j) => j.model },
      { label: "Status", value: (j) => statusBadge(j.status) },
      { label: "Fine-tuned model", value: (j) => (j.fine_tuned_model ? h("code", {}, j.fine_tuned_model) : "—") },
      { label: "Created", value: (j) => when(j.created_at * 1000) },
    ], jobs.data)
    : empty("No fine-tuning jobs yet. Upload a file, then start a job above.");

  root.replaceChildren(
    h("p", { class: "muted" }, "Teach a base model from your own examples: a LoRA adapter is trained on the platform and served as a model only your organisation can call. You pay for the tokens trained, held up front from your balance."),
    h("h2", {}, "1. Upload a training file"),
    h("p", { class: "muted" }, "JSONL, one example per line: {\"messages\": [{\"role\": \"user\", …}, {\"role\": \"assistant\", …}]} or {\"prompt\": …, \"completion\": …}. Every line is checked; a bad line is named."),
    uploadForm, uploadStatus, fileList,
    h("h2", {}, "2. Start a job"),
    bases.length ? jobForm : empty("No base model can be fine-tuned here yet: a platform admin registers one (docs/training.md)."),
    jobStatus,
    h("h2", {}, "Jobs"), jobList);
  showFiles();
}

async function renderJob(root, jobId) {
  const job = await api(`/v1/fine_tuning/jobs/${encodeURIComponent(jobId)}`);
  const status = h("span", { id: "ft-status" });
  const step = h("span", { id: "ft-step" }, "—");
  const epoch = h("span", { id: "ft-epoch" }, "—");
  const loss = h("span", { id: "ft-loss" }, "—");
  const progress = h("progress", { id: "ft-progress", max: 1, value: 0, "aria-label": "Training progress" });
  const notes = h("div", { id: "ft-notes", "aria-live": "polite" });
  const liveNote = h("p", { class: "live-note", id: "ft-live", "data-live": "connecting" }, "Connecting for live updates…");
  const result = h("div", { id: "ft-result" });
  const log = h("ol", { class: "ft-log", id: "ft-log", reversed: true });
  const actions = h("div", { class: "row" });
  const curve = lossChart();
  const points = [];
  let lastEvent = 0;
  let current = job;

  root.replaceChildren(
    h("p", {}, h("a", { href: "#/finetune" }, "← All jobs")),
    h("h2", {}, "Job ", h("code", {}, job.id)),
    h("div", { class: "cards" }, card("Status", status, null, "status"), card("Step", step, null, "step"),
      card("Epoch", epoch, null, "epoch"), card("Training loss", loss, null, "loss")),
    progress, liveNote,
    h("p", { class: "muted" }, `Base ${job.model} · file ${job.training_file} · ${job.hyperparameters.n_epochs} epoch(s), batch ${job.hyperparameters.batch_size}, learning rate × ${job.hyperparameters.learning_rate_multiplier}`),
    actions, notes, result, curve.box,
    h("h2", {}, "Events"), log);

  const cancel = h("button", { class: "danger", id: "ft-cancel" }, "Cancel job");
  cancel.addEventListener("click", async () => {
    if (!secondPress(cancel, "Confirm cancel")) return;
    try {
      current = await busy(cancel, "Cancelling…", () => api(`/v1/fine_tuning/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" }));
      notes.replaceChildren(notice("ok", "Cancelled. You pay only for the tokens already trained; the rest of the hold is released."));
      show();
      nudge();
    } catch (err) {
      notes.replaceChildren(notice("error", err.message));
    }
  });

  function show() {
    status.replaceChildren(statusBadge(current.status));
    actions.replaceChildren(ENDED.has(current.status) ? "" : cancel);
    if (current.status === "failed" && current.error) {
      notes.replaceChildren(notice("error", `The job failed: ${current.error.message || current.error.code || "no reason given"}`));
    }
  }

  // New events since the last one seen: the route answers newest first, `after` pages to older ones.
  async function newEvents() {
    const fresh = [];
    let after = "";
    for (;;) {
      const page = await api(`/v1/fine_tuning/jobs/${encodeURIComponent(jobId)}/events?limit=100${after}`);
      let reached = false;
      for (const e of page.data) {
        if (eventNumber(e.id) <= lastEvent) { reached = true; break; }
        fresh.push(e);
      }
      if (reached || !page.has_more || !page.data.length) break;
      after = `&after=${encodeURIComponent(page.data[page.data.length - 1].id)}`;
    }
    if (fresh.length) lastEvent = eventNumber(fresh[0].id);
    return fresh.reverse();
  }

  function take(events) {
    for (const e of events) {
      log.prepend(h("li", {}, h("span", { class: "muted" }, `${when(e.created_at * 1000)} `), e.message));
      const d = e.data || {};
      if (e.type === "metrics" && d.step !== undefined && d.train_loss !== undefined) {
        points.push({ step: d.step, loss: d.train_loss });
        step.textContent = `${d.step} / ${d.total_steps}`;
        epoch.textContent = `${d.epoch} / ${current.hyperparameters.n_epochs}`;
        loss.textContent = Number(d.train_loss).toFixed(4);
        progress.value = d.total_steps ? d.step / d.total_steps : 0;
      }
    }
    while (log.children.length > 200) log.lastChild.remove();
    curve.update(points);
  }

  // A wait that a /ws event for this job (or a cancel) cuts short.
  // (one that came while the page was reading is kept, so the next wait ends at once)
  let wake = null;
  let poked = false;
  const nudge = () => { if (wake) wake(); else poked = true; };
  const nap = (ms) => new Promise((resolve) => {
    if (poked) { poked = false; resolve(); return; }
    const timer = setTimeout(() => { wake = null; resolve(); }, ms);
    wake = () => { clearTimeout(timer); wake = null; resolve(); };
  });
  let stale = false; // /ws said the job changed (or the socket just came up): read it again
  const live = ENDED.has(job.status) ? null : followTraining(jobId, {
    onEvent(msg) {
      if (msg.type !== "training_progress") stale = true; // a step only adds loss points: no job re-read
      nudge();
    },
    onState(ok, why) {
      stale = true;
      liveNote.dataset.live = ok ? "ws" : "polling";
      liveNote.textContent = ok
        ? "Live: the job's steps and status changes arrive over the gateway's WebSocket (/ws)."
        : `Live updates are unavailable (${why}): checking every ${POLL_MS / 1000} s instead.`;
      nudge();
    },
  });
  if (!live) liveNote.remove();
  window.addEventListener("hashchange", nudge, { once: true }); // leaving the page ends a long wait (and the socket)
  const pace = () => (!live || !live.ok() ? POLL_MS : current.status === "running" ? LIVE_RUNNING_MS : LIVE_WAITING_MS);

  // Follows the job until it ends or the person leaves the page (the router detaches this page's root).
  show();
  try {
    for (;;) {
      try {
        take(await newEvents());
        if (ENDED.has(current.status)) break;
        await nap(pace());
        if (!root.isConnected) return;
        if (stale || !live || !live.ok() || current.status !== "running") {
          stale = false;
          current = await api(`/v1/fine_tuning/jobs/${encodeURIComponent(jobId)}`);
          show();
        }
      } catch (err) {
        notes.replaceChildren(notice("error", `Could not follow the job: ${err.message} Retrying…`));
        await sleep(POLL_MS * 2);
        if (!root.isConnected) return;
      }
    }
  } finally {
    if (live) live.close();
  }
  if (live) liveNote.textContent = `The job ${current.status}; ${liveNote.dataset.live === "ws" ? "followed over /ws" : "followed by polling"}.`;
  if (current.status === "succeeded") {
    progress.value = 1;
    await showResult(current, result);
  }
}
