// Formatting of the API's values for people.

export const pct = (v, digits = 1) => (v === undefined || v === null || Number.isNaN(v) ? "–" : (100 * v).toFixed(digits) + "%");
export const num = (v, digits = 4) => (v === undefined || v === null ? "–" : Number(v).toFixed(digits));

export function bytes(n) {
  n = Number(n);
  if (!Number.isFinite(n)) return "–";
  if (n < 1024) return n + " B";
  if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
  return (n / (1 << 20)).toFixed(1) + " MiB";
}

// time shows an RFC 3339 timestamp in UTC, to the second.
export function time(ts) {
  if (!ts) return "–";
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

// duration shows a protobuf Duration in JSON ("12.5s").
export function duration(s) {
  if (!s) return "–";
  const secs = parseFloat(s);
  if (!Number.isFinite(secs)) return s;
  if (secs < 60) return secs.toFixed(1) + " s";
  const m = Math.floor(secs / 60);
  return m + " min " + Math.round(secs - 60 * m) + " s";
}

export const major = (version) => {
  const m = /^v(\d+)\./.exec(version || "");
  return m ? Number(m[1]) : 0;
};

// compareVersions orders "vX.Y.Z" strings by semver.
export function compareVersions(a, b) {
  const pa = (a || "").slice(1).split(".").map(Number);
  const pb = (b || "").slice(1).split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] || 0) !== (pb[i] || 0)) return (pa[i] || 0) - (pb[i] || 0);
  return 0;
}

// enumName strips an enum's prefix: JOB_STATE_RUNNING → RUNNING.
export const enumName = (v, prefix) => (typeof v === "string" && v.startsWith(prefix) ? v.slice(prefix.length) : String(v ?? "–"));
