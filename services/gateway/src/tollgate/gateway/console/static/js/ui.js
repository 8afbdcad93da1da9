// Small DOM helpers: elements are built with h(), never from HTML strings (no injection by data).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const credits = (value, digits = 4) =>
  value === null || value === undefined ? "—" : Number(value).toLocaleString(undefined, {
    minimumFractionDigits: 2, maximumFractionDigits: digits,
  });
export const microsToCredits = (micros) => Number(micros) / 1_000_000;
export const int = (value) => Number(value || 0).toLocaleString();
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

export function notice(kind, text) {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

export const empty = (text) => h("div", { class: "empty" }, text);
export const loading = (text = "Loading…") => h("p", { class: "loading" }, text);

export function card(label, value, sub, id) {
  return h("div", { class: "card", "data-card": id },
    h("div", { class: "label" }, label), h("div", { class: "value" }, value), sub ? h("div", { class: "sub" }, sub) : null);
}

// columns: [{label, value: row => text|Node, num?: bool}]
export function table(columns, rows, caption) {
  return h("div", { class: "table-wrap" },
    h("table", {},
      caption ? h("caption", { class: "muted" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : null }, c.label)))),
      h("tbody", {}, rows.map((row) =>
        h("tr", {}, columns.map((c) => h("td", { class: c.num ? "num" : null }, c.value(row))))))));
}

// A Chart.js chart in a sized box; the chart library is the vendored UMD build (window.Chart).
export function chart(title, type, labels, datasets, yLabel) {
  const canvas = h("canvas", { role: "img", "aria-label": title });
  const box = h("div", { class: "panel" }, h("h2", {}, title), h("div", { class: "chart-box" }, canvas));
  if (!window.Chart) {
    box.append(notice("error", "The chart library did not load."));
    return box;
  }
  new window.Chart(canvas, {
    type,
    data: { labels, datasets: datasets.map((d) => ({ borderWidth: 2, pointRadius: 2, tension: 0.25, ...d })) },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { display: datasets.length > 1 } },
      scales: { y: { beginAtZero: true, title: { display: !!yLabel, text: yLabel } } },
    },
  });
  return box;
}

// Runs `work` with `button` disabled and its label swapped, so slow actions show progress.
// Two presses instead of a dialog: the first arms the button and says what the next press does;
// true on the second press, when the caller acts.
export function secondPress(button, armedText) {
  if (button.dataset.armed === "1") return true;
  button.dataset.armed = "1";
  button.textContent = armedText;
  return false;
}

export async function busy(button, label, work) {
  const before = button.textContent;
  button.disabled = true;
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.textContent = before;
  }
}

export function isoDay(date) {
  return date.toISOString().slice(0, 10);
}
