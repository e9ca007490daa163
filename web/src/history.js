// History: every registration, activation and rollback, newest first, with
// who, when, from, to and why; filtered by major and action on the server,
// paged with next_page_token (the tokens of the pages seen are kept to go
// back).
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, query } from "./api.js";
import { major, time } from "./format.js";

const ACTIONS = ["register", "activate", "rollback", "auto_rollback", "prune", "upgrade"];
const PAGE_SIZES = [10, 20, 50, 100];

export function History() {
  const [filter, setFilter] = useState({ major: 0, action: "", pageSize: 10 });
  const [tokens, setTokens] = useState([""]); // page tokens of the pages up to the shown one
  const [loaded, setLoaded] = useState(null); // {key, page}
  const [error, setError] = useState("");
  const [majors, setMajors] = useState([]);

  useEffect(() => {
    get("/v1/models")
      .then((l) => setMajors([...new Set(l.versions.map((v) => major(v.version)))].sort((a, b) => a - b)))
      .catch(() => setMajors([]));
  }, []);

  const token = tokens[tokens.length - 1];
  const key = JSON.stringify([filter, tokens.length, token]);
  useEffect(() => {
    let live = true;
    get("/v1/models/history" + query({ page_size: filter.pageSize, page_token: token, major: filter.major, action: filter.action }))
      .then((p) => live && (setLoaded({ key, page: p }), setError("")))
      .catch((e) => live && (setLoaded(null), setError(e.message)));
    return () => (live = false);
  }, [key]);
  // The rows shown are always those of the page the caption names.
  const page = loaded && loaded.key === key ? loaded.page : null;

  const change = (k) => (e) => {
    const v = e.currentTarget.value;
    setFilter({ ...filter, [k]: k === "action" ? v : Number(v) });
    setTokens([""]);
  };
  const entries = page ? page.entries : [];
  return html`<h1>History</h1>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <div>
        <label for="history-major">Major</label>
        <select id="history-major" value=${filter.major} onChange=${change("major")}>
          <option value="0">all</option>
          ${majors.map((m) => html`<option value=${m}>v${m}</option>`)}
        </select>
      </div>
      <div>
        <label for="history-action">Action</label>
        <select id="history-action" value=${filter.action} onChange=${change("action")}>
          <option value="">all</option>
          ${ACTIONS.map((a) => html`<option value=${a}>${a}</option>`)}
        </select>
      </div>
      <div>
        <label for="history-size">Entries per page</label>
        <select id="history-size" value=${filter.pageSize} onChange=${change("pageSize")}>
          ${PAGE_SIZES.map((n) => html`<option value=${n}>${n}</option>`)}
        </select>
      </div>
    </form>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    <div class="scroll">
      <table class="history">
        <caption>Page ${tokens.length} of the history, newest first</caption>
        <thead>
          <tr><th scope="col">#</th><th scope="col">When (UTC)</th><th scope="col">Action</th><th scope="col">Major</th>
            <th scope="col">From</th><th scope="col">To</th><th scope="col">Who</th><th scope="col">Why</th></tr>
        </thead>
        <tbody>
          ${entries.length === 0 && page ? html`<tr><td colspan="8">No entries.</td></tr>` : null}
          ${entries.map(
            (e) => html`<tr data-seq=${e.seq} data-action=${e.action}>
              <td>${e.seq}</td><td>${time(e.time)}</td><td>${e.action}</td><td>${e.major ? "v" + e.major : "all"}</td>
              <td>${e.fromVersion || "–"}</td><td>${e.toVersion || "–"}</td><td class="actor">${e.actor}</td><td class="reason">${e.reason}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <nav class="pager" aria-label="History pages">
      <button type="button" disabled=${tokens.length === 1} onClick=${() => setTokens([""])}>Newest</button>
      <button type="button" disabled=${tokens.length === 1} onClick=${() => setTokens(tokens.slice(0, -1))}>Newer</button>
      <button type="button" id="history-older" disabled=${!page || !page.nextPageToken} onClick=${() => setTokens([...tokens, page.nextPageToken])}>Older</button>
    </nav>`;
}
