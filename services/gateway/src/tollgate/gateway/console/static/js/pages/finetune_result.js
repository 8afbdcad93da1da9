// The Fine-tuning page's pieces that are not the page itself: the loss curve a job's view grows as
// metrics events arrive, and the panel of a succeeded job's model (registry, gateway, Playground).
import { api } from "../api.js";
import { h, int, notice } from "../ui.js";

const POLL_MS = 2000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The loss curve: one Chart.js line chart that grows as metrics events arrive.
export function lossChart() {
  const canvas = h("canvas", { role: "img", "aria-label": "Training loss per step" });
  const box = h("div", { class: "panel", id: "ft-curve", "data-points": "0" },
    h("h2", {}, "Training loss"), h("div", { class: "chart-box" }, canvas));
  if (!window.Chart) {
    box.append(notice("error", "The chart library did not load."));
    return { box, update: (points) => box.setAttribute("data-points", String(points.length)) };
  }
  const chart = new window.Chart(canvas, {
    type: "line",
    data: { labels: [], datasets: [{ label: "training loss", data: [], borderColor: "#1f5f8b", backgroundColor: "#1f5f8b33", borderWidth: 2, pointRadius: 2, tension: 0.2 }] },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { display: false } },
      scales: { x: { title: { display: true, text: "step" } }, y: { beginAtZero: true, title: { display: true, text: "loss" } } },
    },
  });
  return {
    box,
    update(points) {
      chart.data.labels = points.map((p) => p.step);
      chart.data.datasets[0].data = points.map((p) => p.loss);
      chart.update("none");
      box.setAttribute("data-points", String(points.length));
    },
  };
}

// The succeeded job's model: deployed in the training registry, then listed by the gateway once it
// consumed ModelDeployed (a moment later); "Try it" opens the Playground with it chosen.
export async function showResult(job, into) {
  const name = job.fine_tuned_model;
  const registry = h("span", { id: "ft-registry" }, "checking…");
  const gateway = h("span", { id: "ft-gateway" }, "checking…");
  const tryIt = h("p");
  into.replaceChildren(h("div", { class: "panel ft-result" },
    h("h2", {}, "Your model"),
    h("p", {}, h("code", { id: "ft-model-name" }, name)),
    h("p", {}, "Training registry: ", registry, " · Callable through the gateway: ", gateway),
    h("p", { class: "muted" }, `${int(job.trained_tokens)} tokens trained. The model is private to your organisation and priced like its base.`),
    tryIt));
  try {
    const seed = await api(`/training/jobs/${encodeURIComponent(job.id)}`);
    const model = seed.model_id ? await api(`/models/${encodeURIComponent(seed.model_id)}`) : null;
    registry.replaceChildren(model
      ? h("span", { class: `badge ${model.status === "deployed" ? "ok" : "pending"}`, "data-registry": model.status }, model.status)
      : "—");
  } catch (err) {
    registry.textContent = `unknown (${err.message})`;
  }
  for (let i = 0; i < 30 && into.isConnected; i += 1) {
    const listed = await api("/v1/models").then((m) => m.data.some((x) => x.id === name)).catch(() => false);
    if (listed) {
      gateway.textContent = "yes";
      tryIt.replaceChildren(h("a", { class: "button", id: "ft-try", href: `#/playground?model=${encodeURIComponent(name)}` }, "Try it in the Playground"));
      return;
    }
    gateway.textContent = "not yet (the gateway adds it within seconds)…";
    await sleep(POLL_MS);
  }
  if (into.isConnected) gateway.textContent = "not yet: reload this page in a moment";
}
