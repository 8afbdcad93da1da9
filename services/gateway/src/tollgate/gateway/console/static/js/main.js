// The console's shell: sign-in, the role-aware navigation and a hash router (#/keys), so the gateway
// serves one static index.html and every page works after a reload.
import { api, currentSession, onSignedOut, signOut, switchOrganization } from "./api.js";
import { h, loading, notice } from "./ui.js";
import * as signin from "./pages/signin.js";
import * as overview from "./pages/overview.js";
import * as keys from "./pages/keys.js";
import * as playground from "./pages/playground.js";
import * as credits from "./pages/credits.js";
import * as usage from "./pages/usage.js";
import * as models from "./pages/models.js";
import * as finetune from "./pages/finetune.js";
import * as records from "./pages/records.js";
import * as orgs from "./pages/orgs.js";
import * as limits from "./pages/limits.js";

const PAGES = { overview, keys, playground, credits, usage, models, orgs, finetune, records, limits };
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const topbar = document.getElementById("topbar");
let ctx = null;
let flash = null;

// What the signed-in person may do, decided from /auth/me alone (the organisation, the person's role
// in it and, for an API key, the key's own role and permissions): no probe of a route that would
// refuse, so a normal sign-in logs no failed request. The routes still decide; this only hides
// what they would refuse.
async function loadContext() {
  const session = currentSession();
  const me = await api("/auth/me");
  const org = me.organization || null;
  const key = session.kind === "key" ? me.key || null : null;
  const platform = !!key && key.role === "admin";
  const orgAdmin = !!org && (org.role === "owner" || org.role === "admin");
  const mayRead = !key || key.permissions.includes("read");
  return {
    me,
    kind: session.kind,
    orgId: org ? org.id : null,
    orgRole: org ? org.role : null,
    // billing's /admin/payment/list: a platform admin key, or the organisation's owner or admin
    canSeePayments: mayRead && (platform || orgAdmin),
    isPlatformAdmin: platform,
    // auth's /admin/*: a platform admin key, or the key of a team organisation's owner or admin
    managesOrgKeys: !!key && (platform || (orgAdmin && !org.personal)),
    hasUser: !!me.user,
    // a signed-in person's organisations, for the switch (an API key stays in its own)
    orgs: session.kind === "token" ? (await api("/auth/orgs")).data : [],
  };
}

// The organisation switch in the top bar, shown to a person in more than one organisation.
const orgSwitch = document.getElementById("org-switch");
const orgSelect = document.getElementById("org-select");

function renderOrgSwitch(c) {
  orgSwitch.hidden = c.orgs.length < 2;
  orgSelect.replaceChildren(...c.orgs.map((o) =>
    h("option", { value: o.id, selected: o.id === c.orgId }, `${o.name}${o.personal ? " (personal)" : ""}`)));
}

// Organisations come and go on the Organisations page (created, joined, left): the list is read
// again on each navigation, in the background.
async function refreshOrgs() {
  const c = ctx;
  if (!c || c.kind !== "token") return;
  try {
    c.orgs = (await api("/auth/orgs")).data;
    if (ctx === c) renderOrgSwitch(c);
  } catch {
    // the switch keeps the list it has; the page itself reports what fails
  }
}

orgSwitch.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!ctx || orgSelect.value === ctx.orgId) return;
  const button = document.getElementById("org-switch-button");
  button.disabled = true;
  button.textContent = "Switching…";
  try {
    await switchOrganization(orgSelect.value);
    ctx = null; // the role context is the new organisation's, from /auth/me
    const page = (location.hash.replace(/^#\/?/, "") || "overview").split("?")[0];
    // a page's state (a job, a session) belongs to the old organisation: keep only the page
    if (location.hash.includes("?")) location.hash = `#/${page}`;
    else await route();
  } catch (err) {
    orgSelect.value = ctx ? ctx.orgId : orgSelect.value;
    main.prepend(notice("error", `Could not switch the organisation: ${err.message}`));
  } finally {
    button.disabled = false;
    button.textContent = "Switch";
  }
});

function who(c) {
  const name = c.me.user ? c.me.user.email || c.me.user.name : "API key";
  const role = c.isPlatformAdmin ? "platform admin" : c.orgRole || "member";
  return `${name} · ${c.me.organization ? c.me.organization.name : ""} · ${role}`;
}

function allowedPages(c) {
  return Object.entries(PAGES).filter(([, page]) => !page.allowed || page.allowed(c));
}

function renderNav(current) {
  nav.replaceChildren(...allowedPages(ctx).map(([id, page]) =>
    h("a", { href: `#/${id}`, "aria-current": id === current ? "page" : null, "data-page": id }, page.title)));
}

async function route() {
  const session = currentSession();
  const id = (location.hash.replace(/^#\/?/, "") || "overview").split("?")[0];
  if (!session) {
    topbar.hidden = true;
    nav.hidden = true;
    orgSwitch.hidden = true;
    ctx = null;
    main.replaceChildren();
    if (flash) main.append(notice("warn", flash));
    flash = null;
    signin.render(main, { onSignedIn: () => route() });
    return;
  }
  if (!ctx) {
    main.replaceChildren(loading("Signing in…"));
    try {
      ctx = await loadContext();
    } catch (err) {
      flash = `Could not sign in: ${err.message}`;
      await signOut(flash);
      return;
    }
  } else {
    refreshOrgs();
  }
  topbar.hidden = false;
  nav.hidden = false;
  document.getElementById("who").textContent = who(ctx);
  renderOrgSwitch(ctx);
  const entry = allowedPages(ctx).find(([pageId]) => pageId === id);
  renderNav(entry ? id : null);
  closeMenu();
  main.replaceChildren();
  if (!entry) {
    main.append(h("h1", {}, "Not here"), notice("warn", "This page does not exist or your role cannot open it."));
    return;
  }
  const [, page] = entry;
  document.title = `${page.title} · Tollgate console`;
  main.append(h("h1", {}, page.title));
  const body = h("div", {}, loading());
  main.append(body);
  try {
    await page.render(body, ctx);
  } catch (err) {
    body.replaceChildren(notice("error", `This page could not load: ${err.message}`));
  }
  main.focus({ preventScroll: true });
}

function closeMenu() {
  nav.classList.add("collapsed");
  document.getElementById("menu-toggle").setAttribute("aria-expanded", "false");
}

document.getElementById("menu-toggle").addEventListener("click", (event) => {
  const open = nav.classList.toggle("collapsed") === false;
  event.currentTarget.setAttribute("aria-expanded", String(open));
});
document.getElementById("sign-out").addEventListener("click", () => signOut());
onSignedOut((reason) => {
  ctx = null;
  flash = reason || null;
  if (location.hash && location.hash !== "#/") location.hash = ""; // hashchange routes
  else route();
});
window.addEventListener("hashchange", route);
route();
