// The operator console: log in with a bearer token, then the Models,
// History, Training and Evaluation pages (hash routes, so the server serves
// one page). What a page offers follows the caller's role as the server
// reports it (GET /console/api/whoami): only an operator sees the buttons
// that change anything; the API refuses everyone else anyway.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { ApiError, get, getToken, setToken } from "./api.js";
import { Models } from "./models.js";
import { History } from "./history.js";
import { Training } from "./training.js";
import { Evaluation } from "./evaluation.js";

const PAGES = [
  { id: "models", title: "Models", component: Models },
  { id: "history", title: "History", component: History },
  { id: "training", title: "Training", component: Training },
  { id: "evaluation", title: "Evaluation", component: Evaluation },
];

function pageFromHash() {
  const id = location.hash.replace(/^#\/?/, "");
  return PAGES.find((p) => p.id === id) || PAGES[0];
}

function Login({ onLogin, message }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState(message || "");
  const [busy, setBusy] = useState(false);
  async function submit(e) {
    e.preventDefault();
    const t = value.trim();
    if (!t) {
      setError("Enter a bearer token.");
      return;
    }
    setBusy(true);
    setToken(t);
    try {
      onLogin(await get("/console/api/whoami"));
    } catch (err) {
      setToken("");
      setError(err instanceof ApiError && err.status === 401 ? "The server refused this token: " + err.message : err.message);
    } finally {
      setBusy(false);
    }
  }
  return html`<main id="main" class="login">
    <h1>recommendation-api console</h1>
    <form onSubmit=${submit} aria-describedby="login-help">
      <label for="token">Bearer token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} />
      <p id="login-help" class="muted">A token from the server's token file (role operator, agent or viewer). It is kept in this tab only, until you log out or close it.</p>
      <button type="submit" disabled=${busy}>Log in</button>
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    </form>
  </main>`;
}

function App() {
  const [identity, setIdentity] = useState(null);
  const [checking, setChecking] = useState(true);
  const [loginMessage, setLoginMessage] = useState("");
  const [page, setPage] = useState(pageFromHash());

  useEffect(() => {
    const onHash = () => setPage(pageFromHash());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);

  // Resume the tab's session, or find out the server runs without
  // authentication (whoami answers without a token).
  useEffect(() => {
    get("/console/api/whoami")
      .then(setIdentity)
      .catch((err) => {
        if (getToken()) {
          setToken("");
          setLoginMessage(err.status === 401 ? "Your session's token is no longer accepted: " + err.message : err.message);
        }
      })
      .finally(() => setChecking(false));
  }, []);

  useEffect(() => {
    document.title = (identity ? page.title + " · " : "") + "recommendation-api console";
  }, [page, identity]);

  // A 401 anywhere (a token removed from the server's file) ends the session.
  useEffect(() => {
    const onUnauthorized = (e) => {
      setToken("");
      setIdentity(null);
      setLoginMessage("The server no longer accepts your token: " + e.detail);
    };
    addEventListener("console-unauthorized", onUnauthorized);
    return () => removeEventListener("console-unauthorized", onUnauthorized);
  }, []);

  if (checking) return html`<main id="main"><p role="status">Connecting…</p></main>`;
  if (!identity) return html`<${Login} message=${loginMessage} onLogin=${(id) => { setLoginMessage(""); setIdentity(id); }} />`;

  const canOperate = identity.role === "operator";
  const Page = page.component;
  function logout() {
    setToken("");
    setIdentity(null);
  }
  return html`
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById("main").focus(); }}>Skip to content</a>
    <header class="top">
      <span class="brand">recommendation-api</span>
      <nav aria-label="Pages">
        <ul>
          ${PAGES.map((p) => html`<li><a href=${"#/" + p.id} aria-current=${p.id === page.id ? "page" : undefined}>${p.title}</a></li>`)}
        </ul>
      </nav>
      <span class="who" id="who">
        ${identity.authenticated
          ? html`<span>${identity.name} · <strong data-role=${identity.role}>${identity.role}</strong></span>
              <button type="button" class="link" onClick=${logout}>Log out</button>`
          : html`<span><strong>authentication off</strong> (every caller is an operator)</span>`}
      </span>
    </header>
    <main id="main" tabindex="-1">
      ${!canOperate ? html`<p class="banner" id="read-only">Read-only: your role is ${identity.role}; changes need an operator token.</p>` : null}
      <${Page} key=${page.id} canOperate=${canOperate} identity=${identity} />
    </main>`;
}

render(html`<${App} />`, document.getElementById("app"));
