// Training: an operator starts a job with its main parameters; every queued
// or running job is followed on its watch stream (phase, epoch, losses, a
// loss curve of the epochs this page saw); a finished job shows its
// evaluation against the active model and the VPA-style baseline on the
// same held-out data, and the activation decision with its numbers.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { get, post, watch } from "./api.js";
import { LineChart } from "./chart.js";
import { duration, enumName, num, pct, time } from "./format.js";

const FINAL = new Set(["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]);
const POLICIES = [
  ["ACTIVATION_POLICY_IF_BETTER", "if better than the active version"],
  ["ACTIVATION_POLICY_NEVER", "never (register only)"],
  ["ACTIVATION_POLICY_ALWAYS", "always"],
];

function StartForm({ onStarted }) {
  const [p, setP] = useState({ samples: 20000, epochs: 30, seed: 1, activationPolicy: POLICIES[0][0], bump: "patch", reason: "" });
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const set = (k, numeric) => (e) => setP({ ...p, [k]: numeric ? e.currentTarget.valueAsNumber : e.currentTarget.value });
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const body = { samples: String(p.samples), epochs: p.epochs, seed: String(p.seed), activationPolicy: p.activationPolicy, bump: p.bump, reason: p.reason };
      const resp = await post("/v1/training-jobs", body);
      onStarted(resp.job);
    } catch (err) {
      setError((err.status ? `Refused (${err.status}): ` : "") + err.message);
    } finally {
      setBusy(false);
    }
  }
  return html`<form class="start" onSubmit=${submit} aria-labelledby="start-title">
    <h2 id="start-title">Start a training job</h2>
    <div class="grid">
      <div><label for="train-samples">Samples (simulated containers)</label>
        <input id="train-samples" type="number" min="1000" max="1000000" step="1" required value=${p.samples} onInput=${set("samples", true)} /></div>
      <div><label for="train-epochs">Epochs (at most)</label>
        <input id="train-epochs" type="number" min="1" max="500" step="1" required value=${p.epochs} onInput=${set("epochs", true)} /></div>
      <div><label for="train-seed">Seed</label>
        <input id="train-seed" type="number" step="1" required value=${p.seed} onInput=${set("seed", true)} /></div>
      <div><label for="train-policy">Activate the new version</label>
        <select id="train-policy" value=${p.activationPolicy} onChange=${set("activationPolicy")}>
          ${POLICIES.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
        </select></div>
      <div><label for="train-bump">Version bump</label>
        <select id="train-bump" value=${p.bump} onChange=${set("bump")}>
          <option value="patch">patch</option><option value="minor">minor</option>
        </select></div>
      <div class="wide"><label for="train-reason">Reason (recorded in the job and the history)</label>
        <input id="train-reason" type="text" maxlength="1024" value=${p.reason} onInput=${set("reason")} /></div>
    </div>
    <button type="submit" disabled=${busy} id="train-start">Start training</button>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
  </form>`;
}

function Scores({ ev }) {
  if (!ev) return null;
  const rows = [];
  if (ev.candidate) rows.push(["candidate " + ev.candidate.version, ev.candidate.scores, ev.candidate.meanLimitSlack]);
  if (ev.active) rows.push(["active " + ev.active.version, ev.active.scores, ev.active.meanLimitSlack]);
  if (ev.vpaBaseline) rows.push(["VPA p90×1.15", ev.vpaBaseline, (ev.vpaBaseline.cpuLimitSlack + ev.vpaBaseline.memLimitSlack) / 2]);
  return html`<table class="mini eval">
    <caption>Held-out evaluation: ${Number(ev.heldOutSamples).toLocaleString("en")} simulated containers (seed ${ev.heldOutSeed})</caption>
    <thead><tr><th scope="col">scored</th><th scope="col">mean limit slack</th><th scope="col">mem limit slack</th><th scope="col">CPU limit slack</th><th scope="col">OOM</th><th scope="col">throttle</th></tr></thead>
    <tbody>
      ${rows.map(([n, s, mean]) => html`<tr><th scope="row">${n}</th><td>${pct(mean)}</td><td>${pct(s.memLimitSlack)}</td><td>${pct(s.cpuLimitSlack)}</td><td>${pct(s.oomRate)}</td><td>${pct(s.throttleRate)}</td></tr>`)}
    </tbody>
  </table>
  ${ev.activeError ? html`<p class="muted">The active model was not evaluated: ${ev.activeError}</p>` : null}`;
}

function Decision({ a }) {
  if (!a) return null;
  return html`<p class="decision" data-activated=${String(a.activated)}>
    <strong>${enumName(a.policy, "ACTIVATION_POLICY_")}: ${a.activated ? "activated" : "not activated"}</strong>${" "}
    (${a.better ? "better than" : "not better than"} the active version). ${a.reason}
  </p>`;
}

function JobCard({ job, curve, canOperate, onCancel }) {
  const st = enumName(job.state, "JOB_STATE_");
  const pr = job.progress || {};
  const running = !FINAL.has(job.state);
  return html`<article class="job" data-job=${job.id} data-state=${st} aria-labelledby=${job.id + "-title"}>
    <h3 id=${job.id + "-title"}>${job.id} → ${job.version} <span class=${"state state-" + st.toLowerCase()}>${st}</span></h3>
    <p class="muted">
      ${job.params ? `${Number(job.params.samples).toLocaleString("en")} samples, ${job.params.epochs} epochs, seed ${job.params.seed}, ${enumName(job.params.activationPolicy, "ACTIVATION_POLICY_")}; by ${job.params.actor}${job.params.reason ? ": " + job.params.reason : ""}. ` : ""}
      Queued ${time(job.createdAt)}${job.finishedAt ? ", finished " + time(job.finishedAt) : ""}.
    </p>
    ${running
      ? html`<div class="progress">
          <p><span class="phase">${enumName(pr.phase, "JOB_PHASE_")}</span> · epoch <span class="epoch">${pr.epoch || 0}</span>/${pr.epochs}
            · loss ${num(pr.loss)} · validation ${num(pr.valLoss)} · elapsed ${duration(pr.elapsed)} · about ${duration(pr.estimatedRemaining)} left</p>
          <progress max=${pr.epochs || 1} value=${pr.epoch || 0} aria-label=${"Epochs of " + job.id}></progress>
          ${canOperate ? html`<button type="button" class="secondary" onClick=${() => onCancel(job)}>Cancel</button>` : null}
        </div>`
      : null}
    ${curve && curve.length
      ? html`<${LineChart}
          label=${`Loss per epoch of ${job.id}`}
          xLabel="epoch"
          yLabel="loss"
          xFormat=${(v) => (Number.isInteger(v) ? String(v) : "")}
          yFormat=${(v) => v.toFixed(3)}
          width=${520}
          height=${220}
          series=${[
            { name: "training loss", points: curve.map((c) => ({ x: c.epoch, y: c.loss })) },
            { name: "validation loss", points: curve.map((c) => ({ x: c.epoch, y: c.valLoss })) },
          ]}
        />
        <p class="muted">Epochs this page saw on the watch stream (a page opened late sees only the latest).</p>`
      : null}
    ${job.error ? html`<p class="error">${job.error}</p>` : null}
    <${Scores} ev=${job.evaluation} />
    <${Decision} a=${job.activation} />
    ${job.prunedVersions && job.prunedVersions.length ? html`<p class="muted">Retention deleted ${job.prunedVersions.join(", ")}.</p>` : null}
  </article>`;
}

export function Training({ canOperate }) {
  const [jobs, setJobs] = useState(null);
  const [curves, setCurves] = useState({});
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const watching = useRef(new Map()); // job id → AbortController

  const refresh = () =>
    get("/v1/training-jobs")
      .then((r) => (setJobs(r.jobs), setError("")))
      .catch((e) => setError(e.message));
  useEffect(() => {
    refresh();
    return () => {
      for (const c of watching.current.values()) c.abort();
      watching.current.clear();
    };
  }, []);

  const update = (job) => setJobs((js) => (js || []).map((j) => (j.id === job.id ? job : j)));

  // Follow every job that is not finished.
  useEffect(() => {
    for (const job of jobs || []) {
      if (FINAL.has(job.state) || watching.current.has(job.id)) continue;
      const ctl = new AbortController();
      watching.current.set(job.id, ctl);
      watch(
        job.id,
        (ev) => {
          if (ev.epoch > 0)
            setCurves((cs) => {
              const c = cs[job.id] || [];
              return c.some((p) => p.epoch === ev.epoch) ? cs : { ...cs, [job.id]: [...c, { epoch: ev.epoch, loss: ev.loss, valLoss: ev.valLoss }] };
            });
          if (ev.job) {
            update(ev.job);
            setNotice(`${ev.job.id} ended ${enumName(ev.job.state, "JOB_STATE_")}.`);
          } else {
            setJobs((js) =>
              (js || []).map((j) =>
                j.id === ev.jobId
                  ? { ...j, state: ev.state, progress: { phase: ev.phase, epoch: ev.epoch, epochs: ev.epochs, loss: ev.loss, valLoss: ev.valLoss, elapsed: ev.elapsed, estimatedRemaining: ev.estimatedRemaining } }
                  : j,
              ),
            );
          }
        },
        ctl.signal,
      )
        .catch((e) => {
          if (e.name !== "AbortError") setError(`Watching ${job.id}: ${e.message}`);
        })
        .finally(() => watching.current.delete(job.id));
    }
  }, [jobs]);

  async function cancel(job) {
    try {
      const r = await post("/v1/training-jobs/" + encodeURIComponent(job.id) + ":cancel", {});
      update(r.job);
    } catch (e) {
      setError(e.message);
    }
  }

  return html`<h1>Training</h1>
    ${canOperate
      ? html`<${StartForm}
          onStarted=${(job) => {
            setNotice(`Queued ${job.id}, which will produce ${job.version}.`);
            setJobs((js) => [job, ...(js || [])]);
          }}
        />`
      : null}
    <p role="status" class="notice" id="training-notice">${notice}</p>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    <h2>Jobs</h2>
    ${jobs === null && !error ? html`<p>Loading…</p>` : null}
    ${jobs && jobs.length === 0 ? html`<p>No training job yet.</p>` : null}
    ${(jobs || []).map((j) => html`<${JobCard} key=${j.id} job=${j} curve=${curves[j.id]} canOperate=${canOperate} onCancel=${cancel} />`)}`;
}
