// Models: each major's active version and every kept version with its
// manifest's facts (created, size, sha256, training record, held-out
// scores); an operator activates or rolls back through a confirmation
// dialog that sends expected_active = the version this page shows as
// active, so a page that is out of date is refused (409) and says so.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, post } from "./api.js";
import { Dialog } from "./dialog.js";
import { bytes, compareVersions, major, num, pct, time } from "./format.js";

function parseManifest(mv) {
  try {
    return mv.manifestJson ? JSON.parse(mv.manifestJson) : null;
  } catch {
    return null;
  }
}

async function loadModels() {
  const list = await get("/v1/models");
  const versions = await Promise.all(
    list.versions.map(async (v) => {
      const full = await get("/v1/models/" + encodeURIComponent(v.version));
      return { ...full.model, manifest: parseManifest(full.model) };
    }),
  );
  const majors = new Map();
  for (const v of versions) {
    const m = major(v.version);
    if (!majors.has(m)) majors.set(m, { major: m, active: "", versions: [] });
    const g = majors.get(m);
    g.versions.push(v);
    if (v.active) g.active = v.version;
  }
  const groups = [...majors.values()].sort((a, b) => b.major - a.major);
  for (const g of groups) g.versions.sort((a, b) => compareVersions(b.version, a.version));
  return groups;
}

function Training({ t }) {
  if (!t) return html`<span class="muted">–</span>`;
  const hp = t.hyperparameters || {};
  return html`<ul class="facts">
    <li>${Number(t.samples).toLocaleString("en")} samples (${Number(t.train_samples).toLocaleString("en")} train, ${Number(t.val_samples).toLocaleString("en")} validation)</li>
    <li>epochs ${t.epochs_run}/${t.epochs}, best ${t.best_epoch}; seed ${t.seed}</li>
    <li>loss ${num(t.train_loss)}, validation ${num(t.val_loss)}; ${t.duration_ms < 1000 ? t.duration_ms + " ms" : (t.duration_ms / 1000).toFixed(1) + " s"}</li>
    ${t.parent_version ? html`<li>parent ${t.parent_version}</li>` : null}
    ${Object.keys(hp).length
      ? html`<li><details><summary>hyperparameters</summary><ul class="hyper">${Object.entries(hp).map(([k, v]) => html`<li><code>${k}</code> = ${v}</li>`)}</ul></details></li>`
      : null}
  </ul>`;
}

function Metrics({ m, version }) {
  if (!m) return html`<span class="muted">not evaluated</span>`;
  const row = (name, s) => html`<tr>
    <th scope="row">${name}</th><td>${pct(s.mem_limit_slack)}</td><td>${pct(s.cpu_limit_slack)}</td><td>${pct(s.oom_rate)}</td><td>${pct(s.throttle_rate)}</td>
  </tr>`;
  return html`<table class="mini">
    <caption>${Number(m.held_out_samples).toLocaleString("en")} held-out samples (synthetic), ${version}</caption>
    <thead><tr><th scope="col">scored</th><th scope="col">mem limit slack</th><th scope="col">CPU limit slack</th><th scope="col">OOM</th><th scope="col">throttle</th></tr></thead>
    <tbody>${row("model", m.model)}${row("VPA p90×1.15", m.vpa_baseline)}</tbody>
  </table>`;
}

// ChangeDialog confirms an activation or a rollback.
function ChangeDialog({ change, onClose, onDone }) {
  const { kind, group } = change;
  const older = group.versions.filter((v) => v.version !== group.active).map((v) => v.version);
  const [target, setTarget] = useState(kind === "activate" ? change.version : "");
  const [reason, setReason] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const expected = group.active || "none";

  async function submit(e) {
    e.preventDefault();
    if (!reason.trim()) {
      setError({ message: "Give a reason: it is recorded in the history." });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      let resp;
      if (kind === "activate") {
        resp = await post("/v1/models/" + encodeURIComponent(target) + ":activate", { reason, expectedActive: expected });
      } else {
        resp = await post("/v1/models:rollback", { toVersion: target, major: group.major, reason, expectedActive: expected });
      }
      onDone(
        resp.changed
          ? `${kind === "activate" ? "Activated" : "Rolled back to"} ${resp.model.version} (was ${resp.previousVersion || "none"}).`
          : resp.note || "Nothing changed.",
      );
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  const verb = kind === "activate" ? "Activate" : "Roll back";
  return html`<${Dialog} title=${kind === "activate" ? `Activate ${target}?` : `Roll back major v${group.major}?`} onClose=${onClose}>
    <form onSubmit=${submit}>
      <p>This page shows <strong>${group.active || "no version"}</strong> as active in major v${group.major}; the change is made only if that is still so.</p>
      ${kind === "rollback"
        ? html`<label for="rollback-target">Roll back to</label>
            <select id="rollback-target" value=${target} onChange=${(e) => setTarget(e.currentTarget.value)}>
              <option value="">the previously active version</option>
              ${older.map((v) => html`<option value=${v}>${v}</option>`)}
            </select>`
        : null}
      <label for="change-reason">Reason (recorded in the history)</label>
      <textarea id="change-reason" rows="3" required value=${reason} onInput=${(e) => setReason(e.currentTarget.value)}></textarea>
      ${error
        ? html`<div class="error" role="alert" id="change-error">
            ${error.status === 409
              ? html`<p><strong>Refused: the page is out of date.</strong> The active version of major v${group.major} is no longer ${expected}, so nothing was changed.</p>
                  <p>Server: ${error.message}</p>
                  <p><button type="button" onClick=${() => onDone("")}>Reload the models</button></p>`
              : html`<p>${error.status ? `Refused (${error.status}): ` : ""}${error.message}</p>`}
          </div>`
        : null}
      <div class="actions">
        <button type="button" class="secondary" onClick=${onClose}>Cancel</button>
        <button type="submit" disabled=${busy} id="confirm-change">${verb}</button>
      </div>
    </form>
  <//>`;
}

export function Models({ canOperate }) {
  const [groups, setGroups] = useState(null);
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const [change, setChange] = useState(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let live = true;
    loadModels()
      .then((g) => live && (setGroups(g), setError("")))
      .catch((e) => live && setError(e.message));
    return () => (live = false);
  }, [tick]);

  const reload = () => setTick((t) => t + 1);
  return html`<h1>Models</h1>
    <p role="status" class="notice" id="models-notice">${notice}</p>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    ${groups === null && !error ? html`<p>Loading…</p>` : null}
    ${groups && groups.length === 0 ? html`<p>No version is registered.</p>` : null}
    ${(groups || []).map(
      (g) => html`<section class="major" aria-labelledby=${"major-" + g.major}>
        <div class="section-head">
          <h2 id=${"major-" + g.major}>Major v${g.major}: active <span class="active-version" data-major=${g.major}>${g.active || "none"}</span></h2>
          ${canOperate && g.versions.length > 1
            ? html`<button type="button" class="rollback" data-major=${g.major} onClick=${() => setChange({ kind: "rollback", group: g })}>Roll back…</button>`
            : null}
        </div>
        <div class="scroll">
          <table class="versions">
            <caption>Kept versions of major v${g.major}, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Version</th><th scope="col">Created</th><th scope="col">Size</th><th scope="col">SHA-256</th>
                <th scope="col">Training</th><th scope="col">Held-out scores</th>${canOperate ? html`<th scope="col">Actions</th>` : null}
              </tr>
            </thead>
            <tbody>
              ${g.versions.map(
                (v) => html`<tr data-version=${v.version} class=${v.active ? "is-active" : ""}>
                  <th scope="row">${v.version}${v.active ? html` <span class="badge">active</span>` : null}</th>
                  <td>${time(v.createdAt)}</td>
                  <td>${bytes(v.sizeBytes)}<br /><span class="muted">${v.parameters} parameters</span></td>
                  <td><code class="sha">${v.sha256}</code></td>
                  <td><${Training} t=${v.manifest && v.manifest.training} /></td>
                  <td><${Metrics} m=${v.manifest && v.manifest.metrics} version=${v.version} /></td>
                  ${canOperate
                    ? html`<td>${v.active
                        ? html`<span class="muted">serving</span>`
                        : html`<button type="button" class="activate" data-version=${v.version} onClick=${() => setChange({ kind: "activate", group: g, version: v.version })}>Activate…</button>`}</td>`
                    : null}
                </tr>`,
              )}
            </tbody>
          </table>
        </div>
      </section>`,
    )}
    ${change
      ? html`<${ChangeDialog}
          change=${change}
          onClose=${() => setChange(null)}
          onDone=${(msg) => {
            setChange(null);
            setNotice(msg);
            reload();
          }}
        />`
      : null}`;
}
