// The console's only way to the server: its REST API on the same origin,
// with the session's bearer token in the Authorization header. The token is
// kept in memory and in this tab's sessionStorage (so a reload keeps the
// session); never in localStorage, a cookie or a URL.

const TOKEN_KEY = "recommendation-api.token";

let token = sessionStorage.getItem(TOKEN_KEY) || "";

export function getToken() {
  return token;
}

export function setToken(t) {
  token = t;
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// ApiError is a refused or failed call: the HTTP status, the gRPC code name
// the gateway's JSON carries, and the server's message.
export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra) {
  const h = { Accept: "application/json", ...extra };
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

async function errorOf(resp) {
  let msg = resp.statusText || "HTTP " + resp.status;
  let code;
  try {
    const body = await resp.json();
    if (body && typeof body.message === "string" && body.message) msg = body.message;
    code = body && body.code;
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(resp.status, msg, code);
}

// call sends one request and returns the decoded JSON answer, or throws an
// ApiError.
export async function call(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }), cache: "no-store" };
  if (body !== undefined) init.body = JSON.stringify(body);
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "the server cannot be reached: " + e.message);
  }
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (resp.status === 401 && token) dispatchEvent(new CustomEvent("console-unauthorized", { detail: err.message }));
    throw err;
  }
  return resp.json();
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body ?? {});

// query builds "?a=1&b=x" from the set values of params.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "" && v !== 0) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

// watch follows GET /v1/training-jobs/{id}:watch, a stream of
// newline-delimited JSON objects {"result": {"event": …}} (or {"error": …}),
// calling onEvent for each event until the stream ends or signal aborts it.
export async function watch(id, onEvent, signal) {
  const resp = await fetch("/v1/training-jobs/" + encodeURIComponent(id) + ":watch", { headers: headers({}), signal, cache: "no-store" });
  if (!resp.ok) throw await errorOf(resp);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line);
      if (msg.error) throw new ApiError(200, msg.error.message || "the watch stream failed", msg.error.code);
      if (msg.result && msg.result.event) onEvent(msg.result.event);
    }
  }
}
