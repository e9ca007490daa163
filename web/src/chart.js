// A small hand-drawn SVG line chart: linear axes with ticks, one polyline
// per series told apart by colour, dash pattern and marker shape (so colour
// is never the only cue), an optional highlighted point per series, and a
// legend. The chart is an image for assistive technology (role="img" with
// the label the caller gives); callers put the numbers in a table beside it.
import { html } from "./html.js";

export const PALETTE = ["#1f4e79", "#b8480b", "#2e7d32", "#7b1fa2", "#5d4037", "#ad1457"];
const DASHES = ["", "6 3", "2 3", "8 3 2 3", "4 4", "1 2"];

function ticks(lo, hi, n) {
  const span = hi - lo || 1;
  const raw = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function marker(shape, x, y, color, big) {
  const r = big ? 5 : 3;
  switch (shape % 4) {
    case 0:
      return html`<circle cx=${x} cy=${y} r=${r} fill=${color} />`;
    case 1:
      return html`<rect x=${x - r} y=${y - r} width=${2 * r} height=${2 * r} fill=${color} />`;
    case 2:
      return html`<path d=${`M${x},${y - r - 1}L${x + r + 1},${y + r}L${x - r - 1},${y + r}Z`} fill=${color} />`;
    default:
      return html`<path d=${`M${x},${y - r - 1}L${x + r + 1},${y}L${x},${y + r + 1}L${x - r - 1},${y}Z`} fill=${color} />`;
  }
}

// LineChart draws series = [{name, points: [{x, y}], highlight?: {x, y}}].
// xDomain / yDomain fix an axis ([lo, hi]); otherwise it spans the data.
export function LineChart({ label, series, xLabel, yLabel, xFormat = String, yFormat = String, xDomain, yDomain, width = 640, height = 320 }) {
  const m = { l: 64, r: 16, t: 12, b: 46 };
  const pts = series.flatMap((s) => s.points);
  if (pts.length === 0) return html`<p class="muted">No points to draw yet.</p>`;
  const ext = (k, d) => (d ? d : [Math.min(...pts.map((p) => p[k])), Math.max(...pts.map((p) => p[k]))]);
  let [x0, x1] = ext("x", xDomain);
  let [y0, y1] = ext("y", yDomain);
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [Math.max(0, y0 - Math.abs(y0) * 0.1 - 0.01), y1 + Math.abs(y1) * 0.1 + 0.01];
  const W = width - m.l - m.r;
  const H = height - m.t - m.b;
  const sx = (v) => m.l + ((v - x0) / (x1 - x0)) * W;
  const sy = (v) => m.t + H - ((v - y0) / (y1 - y0)) * H;
  const xt = ticks(x0, x1, 6);
  const yt = ticks(y0, y1, 5);
  return html`<figure class="chart">
    <svg viewBox=${`0 0 ${width} ${height}`} role="img" aria-label=${label} preserveAspectRatio="xMidYMid meet">
      <title>${label}</title>
      <g class="grid">
        ${yt.map((v) => html`<line x1=${m.l} x2=${m.l + W} y1=${sy(v)} y2=${sy(v)} />`)}
        ${xt.map((v) => html`<line y1=${m.t} y2=${m.t + H} x1=${sx(v)} x2=${sx(v)} />`)}
      </g>
      <g class="axis">
        <line x1=${m.l} x2=${m.l + W} y1=${m.t + H} y2=${m.t + H} />
        <line x1=${m.l} x2=${m.l} y1=${m.t} y2=${m.t + H} />
        ${xt.map((v) => html`<text x=${sx(v)} y=${m.t + H + 16} text-anchor="middle">${xFormat(v)}</text>`)}
        ${yt.map((v) => html`<text x=${m.l - 6} y=${sy(v) + 4} text-anchor="end">${yFormat(v)}</text>`)}
        <text x=${m.l + W / 2} y=${height - 6} text-anchor="middle" class="axis-label">${xLabel}</text>
        <text transform=${`translate(14 ${m.t + H / 2}) rotate(-90)`} text-anchor="middle" class="axis-label">${yLabel}</text>
      </g>
      ${series.map((s, i) => {
        const c = PALETTE[i % PALETTE.length];
        const d = s.points.map((p, k) => `${k ? "L" : "M"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join("");
        return html`<g class="series">
          <path d=${d} fill="none" stroke=${c} stroke-width="2" stroke-dasharray=${DASHES[i % DASHES.length] || undefined} />
          ${s.points.map((p) => marker(i, sx(p.x), sy(p.y), c, false))}
          ${s.highlight ? marker(i, sx(s.highlight.x), sy(s.highlight.y), c, true) : null}
        </g>`;
      })}
    </svg>
    <figcaption>
      <ul class="legend">
        ${series.map((s, i) => {
          const c = PALETTE[i % PALETTE.length];
          return html`<li>
            <svg width="34" height="12" aria-hidden="true" focusable="false">
              <line x1="1" x2="33" y1="6" y2="6" stroke=${c} stroke-width="2" stroke-dasharray=${DASHES[i % DASHES.length] || undefined} />
              ${marker(i, 17, 6, c, false)}
            </svg>
            ${s.name}</li>`;
        })}
      </ul>
    </figcaption>
  </figure>`;
}
