// Talks to the gateway's public routes as the signed-in person: an access token (refreshed with the
// rotating refresh token when it runs out) or an API key. The session lives in sessionStorage: it
// ends with the tab, and the page's CSP allows no script but the console's own.

const STORE = "tollgate.console.session";

export class ApiError extends Error {
  constructor(status, message, code, param) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param || null; // the field a route named (OpenAI's `param`, SloughGPT's `details.parameter`)
  }
}

export function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE) || "null");
  } catch {
    return null;
  }
}

function saveSession(session) {
  if (session) sessionStorage.setItem(STORE, JSON.stringify(session));
  else sessionStorage.removeItem(STORE);
}

let session = loadSession();
let refreshing = null;
const listeners = new Set();

export const onSignedOut = (fn) => listeners.add(fn);
export const currentSession = () => session;

// Every envelope the routes answer in: OpenAI's and SloughGPT's {error: {message, code}}, the credit
// chat API's {error: "..."}, FastAPI's {detail}.
function errorFrom(status, body) {
  const err = body && body.error;
  if (err && typeof err === "object") {
    const made = new ApiError(status, err.message || `HTTP ${status}`, err.code, err.param || (err.details && err.details.parameter));
    made.reason = (err.details && err.details.reason) || err.code; // SloughGPT's stable code, or OpenAI's
    return made;
  }
  if (typeof err === "string") return new ApiError(status, err);
  if (body && typeof body.detail === "string") return new ApiError(status, body.detail);
  return new ApiError(status, status === 0 ? "The gateway could not be reached." : `HTTP ${status}`);
}

async function raw(path, { method = "GET", body, headers = {}, credential } = {}) {
  const h = { ...headers };
  if (credential) h.Authorization = `Bearer ${credential}`;
  const form = body instanceof FormData; // multipart (file uploads): the browser sets its boundary
  if (body !== undefined && !form) h["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, { method, headers: h, body: body === undefined || form ? body : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "The gateway could not be reached. Is the platform running?");
  }
  return resp;
}

async function parse(resp) {
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text.slice(0, 200) };
  }
  if (!resp.ok) throw errorFrom(resp.status, data);
  return data;
}

export async function signInWithPassword(email, password) {
  const tokens = await parse(await raw("/auth/login", { method: "POST", body: { email, password } }));
  setTokens(tokens);
}

export async function register(name, email, password) {
  const tokens = await parse(await raw("/auth/register", { method: "POST", body: { name, email, password } }));
  setTokens(tokens);
}

export async function signInWithKey(apiKey) {
  const me = await parse(await raw("/auth/me", { credential: apiKey }));
  session = { kind: "key", apiKey };
  saveSession(session);
  return me;
}

function setTokens(tokens) {
  session = {
    kind: "token",
    access: tokens.access_token,
    refresh: tokens.refresh_token,
    expiresAt: Date.now() + tokens.expires_in * 1000,
  };
  saveSession(session);
}

export async function signOut(reason) {
  const old = session;
  session = null;
  saveSession(null);
  if (old && old.kind === "token") {
    // ends the session server-side too; a failure here changes nothing for this tab
    await raw("/auth/logout", { method: "POST", credential: old.access }).catch(() => {});
  }
  listeners.forEach((fn) => fn(reason));
}

// One refresh at a time: concurrent 401s wait on the same rotation (a refresh token is single-use,
// and presenting a used one revokes the whole session).
async function refresh() {
  if (!refreshing) {
    const presented = session.refresh;
    refreshing = (async () => {
      const resp = await raw("/auth/refresh", { method: "POST", credential: presented });
      if (!resp.ok) throw errorFrom(resp.status, await resp.json().catch(() => null));
      setTokens(await resp.json());
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// The organisation switch: a new session of the same person in another organisation of theirs
// (POST /auth/switch-organization); the old session ends server-side. A rotation in flight is
// waited for first, so the switch presents the newest access token.
export async function switchOrganization(orgId) {
  if (refreshing) await refreshing.catch(() => {});
  const tokens = await api("/auth/switch-organization", { method: "POST", body: { organization_id: orgId } });
  setTokens(tokens);
}

function credential() {
  if (!session) return null;
  return session.kind === "key" ? session.apiKey : session.access;
}

// The credential for a WebSocket's first message (the gateway's /ws): a session's access token is
// refreshed first when it is about to expire.
export async function freshCredential() {
  if (session && session.kind === "token" && Date.now() > session.expiresAt - 60_000) await refresh().catch(() => {});
  return credential();
}

// fetch with the session's credential; one refresh and retry on a 401 or an expiring token
export async function send(path, options = {}) {
  if (!session) throw new ApiError(401, "Not signed in.");
  if (session.kind === "token" && Date.now() > session.expiresAt - 30_000) {
    await refresh().catch(() => {});
  }
  let resp = await raw(path, { ...options, credential: credential() });
  if (resp.status === 401 && session && session.kind === "token") {
    try {
      await refresh();
    } catch {
      await signOut("Your session ended. Sign in again.");
      throw new ApiError(401, "Your session ended. Sign in again.");
    }
    resp = await raw(path, { ...options, credential: credential() });
  }
  return resp;
}

export async function api(path, options) {
  return parse(await send(path, options));
}

// Like api(), but a refusal for lack of rights (403) or a missing route (404) answers null.
export async function probe(path) {
  try {
    return await api(path);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 403 || err.status === 404)) return null;
    throw err;
  }
}

// A call made with another API key than the session's (e.g. the organisation admin's key that
// GET /admin/audit/list needs when the person signed in with a password); nothing is stored.
export async function withKey(apiKey, path, options = {}) {
  return parse(await raw(path, { ...options, credential: apiKey }));
}
