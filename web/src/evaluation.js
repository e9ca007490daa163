// Evaluation: the slack-vs-risk comparison of a model against VPA and KRR
// on real traces, from the reports `recommendation-api evaluate --out`
// wrote into the server's evaluation directory, drawn as the report has it
// (no number is computed here beyond reading it off); then each kept
// version's synthetic held-out scores from its manifest.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { get } from "./api.js";
import { LineChart } from "./chart.js";
import { compareVersions, pct } from "./format.js";

const p0 = (v) => (100 * v).toFixed(0) + "%";

function ReportView({ r }) {
  const rec = new Map(r.recommenders.map((s) => [s.name, s]));
  const mem = (r.memory_curves || []).map((c) => ({
    name: c.name,
    points: c.points.map((p) => ({ x: p.risk, y: p.slack })),
    highlight: rec.has(c.name) ? { x: rec.get(c.name).oom_rate, y: rec.get(c.name).mem_limit_slack.mean } : null,
  }));
  const cpu = (r.cpu_curves || []).map((c) => ({
    name: c.name,
    points: c.points.map((p) => ({ x: p.risk, y: p.slack })),
    highlight: rec.has(c.name) ? { x: rec.get(c.name).throttle_rate.mean, y: rec.get(c.name).cpu_limit_slack.mean } : null,
  }));
  const title = `${r.history_days}-day history: model ${r.model}`;
  return html`<section class="report" aria-label=${title}>
    <h3>${title}</h3>
    <p class="muted">${r.container_days} container-days of ${r.containers_scored} containers (${r.held_out_series} of ${r.series} traces held out from training).
      Each curve scales that recommender's limits; the large marker is the limit as recommended. Lower is better at equal risk.</p>
    <div class="charts">
      <${LineChart}
        label=${"Memory limit slack against OOM rate, " + title}
        xLabel="container-days with an OOM"
        yLabel="mean memory limit slack"
        xFormat=${p0}
        yFormat=${p0}
        yDomain=${[0, 1]}
        series=${mem}
      />
      <${LineChart}
        label=${"CPU limit slack against throttling, " + title}
        xLabel="CPU samples above the limit"
        yLabel="mean CPU limit slack"
        xFormat=${p0}
        yFormat=${p0}
        yDomain=${[0, 1]}
        series=${cpu}
      />
    </div>
    <div class="scroll">
      <table class="mini">
        <caption>As recommended (means over container-days)</caption>
        <thead><tr><th scope="col">recommender</th><th scope="col">mem limit slack</th><th scope="col">OOM days</th><th scope="col">CPU limit slack</th><th scope="col">throttled samples</th></tr></thead>
        <tbody>
          ${r.recommenders.map((s) => html`<tr><th scope="row">${s.name}</th><td>${pct(s.mem_limit_slack.mean)}</td><td>${pct(s.oom_rate)} (${s.oom_days})</td><td>${pct(s.cpu_limit_slack.mean)}</td><td>${pct(s.throttle_rate.mean)}</td></tr>`)}
        </tbody>
      </table>
    </div>
    ${r.equal_risk && r.equal_risk.length
      ? html`<div class="scroll"><table class="mini">
          <caption>At equal risk: memory limits scaled to the reference's OOM rate</caption>
          <thead><tr><th scope="col">recommender</th><th scope="col">reference</th><th scope="col">factor</th><th scope="col">OOM days</th><th scope="col">mem limit slack</th><th scope="col">reference's slack</th></tr></thead>
          <tbody>
            ${r.equal_risk.map((m) => html`<tr><th scope="row">${m.name}</th><td>${m.reference}</td><td>×${m.factor.toFixed(2)}</td><td>${pct(m.oom_rate)}</td><td>${pct(m.mem_limit_slack.mean)}</td><td>${rec.has(m.reference) ? pct(rec.get(m.reference).mem_limit_slack.mean) : "–"}</td></tr>`)}
          </tbody>
        </table></div>`
      : null}
  </section>`;
}

function ManifestScores() {
  const [versions, setVersions] = useState(null);
  useEffect(() => {
    get("/v1/models")
      .then((l) => setVersions(l.versions.slice().sort((a, b) => compareVersions(b.version, a.version))))
      .catch(() => setVersions([]));
  }, []);
  if (!versions) return null;
  const rows = versions.filter((v) => v.evaluation);
  return html`<section aria-labelledby="manifest-scores">
    <h2 id="manifest-scores">Synthetic held-out scores of the kept versions</h2>
    <p class="muted">From each version's manifest: simulated held-out containers, scored against the VPA-style p90×1.15 baseline on the same data.</p>
    <div class="scroll"><table class="mini">
      <thead><tr><th scope="col">version</th><th scope="col">held out</th><th scope="col">mem limit slack (model / VPA)</th><th scope="col">CPU limit slack (model / VPA)</th><th scope="col">OOM (model / VPA)</th></tr></thead>
      <tbody>
        ${rows.length === 0 ? html`<tr><td colspan="5">No version records held-out scores.</td></tr>` : null}
        ${rows.map((v) => {
          const e = v.evaluation;
          return html`<tr><th scope="row">${v.version}${v.active ? " (active)" : ""}</th><td>${Number(e.heldOutSamples).toLocaleString("en")}</td>
            <td>${pct(e.model.memLimitSlack)} / ${pct(e.vpaBaseline.memLimitSlack)}</td>
            <td>${pct(e.model.cpuLimitSlack)} / ${pct(e.vpaBaseline.cpuLimitSlack)}</td>
            <td>${pct(e.model.oomRate)} / ${pct(e.vpaBaseline.oomRate)}</td></tr>`;
        })}
      </tbody>
    </table></div>
  </section>`;
}

export function Evaluation() {
  const [list, setList] = useState(null);
  const [file, setFile] = useState("");
  const [report, setReport] = useState(null);
  const [error, setError] = useState("");

  useEffect(() => {
    get("/console/api/evaluations")
      .then((l) => {
        setList(l);
        if (l.evaluations.length) setFile(l.evaluations[0].file);
      })
      .catch((e) => setError(e.message));
  }, []);
  useEffect(() => {
    if (!file) return;
    let live = true;
    setReport(null);
    get("/console/api/evaluations/" + encodeURIComponent(file))
      .then((r) => live && setReport(r))
      .catch((e) => live && setError(e.message));
    return () => (live = false);
  }, [file]);

  return html`<h1>Evaluation</h1>
    <h2>Real traces: model against VPA and KRR</h2>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    ${list && list.evaluations.length === 0
      ? html`<p>No evaluation report on the server. Write one with
          <code>recommendation-api evaluate --trace DIR --out ${list.dir || "DATA_DIR/evaluations"}/NAME.json</code>; this page shows every such file.</p>`
      : null}
    ${list && list.unreadable.length ? html`<p class="muted">Not shown: ${list.unreadable.map((u) => u.file + " (" + u.reason + ")").join("; ")}</p>` : null}
    ${list && list.evaluations.length
      ? html`<form class="filters" onSubmit=${(e) => e.preventDefault()}>
          <div>
            <label for="eval-file">Report</label>
            <select id="eval-file" value=${file} onChange=${(e) => setFile(e.currentTarget.value)}>
              ${list.evaluations.map((ev) => html`<option value=${ev.file}>${ev.file}: ${[...new Set(ev.reports.map((r) => r.model))].join(", ")}</option>`)}
            </select>
          </div>
        </form>`
      : null}
    ${report
      ? html`<p class="muted">Made by <code>recommendation-api ${report.command}</code>${report.revision ? " at " + report.revision : ""}.</p>
          ${report.reports.map((r) => html`<${ReportView} r=${r} />`)}`
      : null}
    <${ManifestScores} />`;
}
