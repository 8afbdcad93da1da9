// Sign in with email and password (a session: access + refresh token), create an account, or use
// an API key (an admin key shows the admin pages).
import { register, signInWithKey, signInWithPassword } from "../api.js";
import { busy, h, notice } from "../ui.js";

export function render(root, { onSignedIn }) {
  const box = h("section", { class: "signin panel", "aria-labelledby": "signin-title" });
  const status = h("div", { "aria-live": "assertive" });
  const modes = {
    password: passwordForm,
    register: registerForm,
    key: keyForm,
  };
  const tabs = h("div", { class: "tabs", role: "group", "aria-label": "How to sign in" },
    tab("password", "Email and password"), tab("register", "Create account"), tab("key", "API key"));
  const holder = h("div");
  box.append(h("h1", { id: "signin-title" }, "Tollgate console"), tabs, status, holder);
  root.append(box);
  show("password");

  function tab(mode, label) {
    return h("button", { type: "button", class: "secondary", "data-mode": mode, onclick: () => show(mode) }, label);
  }

  function show(mode) {
    for (const b of tabs.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
    status.replaceChildren();
    holder.replaceChildren(modes[mode]());
    holder.querySelector("input").focus();
  }

  async function attempt(button, work) {
    status.replaceChildren();
    try {
      await busy(button, "Signing in…", work);
      onSignedIn();
    } catch (err) {
      status.replaceChildren(notice("error", err.message));
    }
  }

  function passwordForm() {
    const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
    const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
    const submit = h("button", { type: "submit" }, "Sign in");
    return h("form", { class: "stack", id: "signin-form", onsubmit: (e) => {
      e.preventDefault();
      attempt(submit, () => signInWithPassword(email.value, password.value));
    } }, h("label", {}, "Email", email), h("label", {}, "Password", password), submit);
  }

  function registerForm() {
    const name = h("input", { name: "name", autocomplete: "name", required: true, maxlength: 100 });
    const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
    const password = h("input", { type: "password", name: "password", autocomplete: "new-password", required: true, minlength: 8 });
    const submit = h("button", { type: "submit" }, "Create account");
    return h("form", { class: "stack", id: "register-form", onsubmit: (e) => {
      e.preventDefault();
      attempt(submit, () => register(name.value, email.value, password.value));
    } }, h("label", {}, "Name", name), h("label", {}, "Email", email),
    h("label", {}, "Password (at least 8 characters)", password), submit);
  }

  function keyForm() {
    const key = h("input", { type: "password", name: "api_key", autocomplete: "off", required: true, placeholder: "tg_…" });
    const submit = h("button", { type: "submit" }, "Use this key");
    return h("form", { class: "stack", id: "key-form", onsubmit: (e) => {
      e.preventDefault();
      attempt(submit, () => signInWithKey(key.value.trim()));
    } }, h("label", {}, "API key (make run prints the admin key)", key), submit,
    h("p", { class: "muted" }, "The key stays in this tab only and is forgotten when you close it."));
  }
}
