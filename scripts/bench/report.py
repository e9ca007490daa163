#!/usr/bin/env python3
"""Helpers for scripts/bench.sh (python3 standard library only).

  report.py data DIR                    write predict-{1,100,1000}.json request bodies into DIR
  report.py register-body ONNX MANIFEST OUT   write the POST /v1/models JSON body
  report.py markdown RESULTS_DIR        print the markdown report of one bench.sh run

RESULTS_DIR is what bench.sh fills: meta.json, runs.tsv (one line per ghz run),
ghz JSON reports, swaps-*.tsv, gobench.txt, pipeline-*.time, and for the
training-job section jobs.tsv (run name, job id) with NAME.job.json (the final
record), NAME.atend.json (the record as the load ended), NAME.watch.jsonl (the
REST WatchJob stream), train-cli-*.time, train-cli.manifest.json and
train-c.model.json.

Every comparison is a ratio between figures measured in the same run, because
the machine (2 vCPUs shared with other builds) is too noisy for absolute
numbers to mean much from one run to the next.
"""
import base64
import calendar
import json
import os
import random
import re
import statistics
import sys
import time


# ---------------------------------------------------------------- request data

def write_data(out_dir):
    """Request bodies for ghz -D: predict-{1,100,1000}.json with fixed
    pseudo-random features in [0,1], and noop.json for Health/Check.

    (Serialized protobuf via ghz -B was tried: it saves ghz under 5 % of its
    CPU per call, because ghz spends it mostly on the call and the response,
    so the bodies stay readable JSON.)"""
    rnd = random.Random(1)
    for n in (1, 100, 1000):
        inst = []
        for i in range(n):
            vals = [round(rnd.random(), 4) for _ in range(12)]
            inst.append({"container_id": "bench-%d" % i, "features": {"values": vals}})
        with open(os.path.join(out_dir, "predict-%d.json" % n), "w") as f:
            json.dump({"instances": inst}, f, separators=(",", ":"))
    # The no-op asks for the Predict service's status by name: a map lookup
    # under a read lock in grpc-go's health server.
    with open(os.path.join(out_dir, "noop.json"), "w") as f:
        f.write('{"service":"recommendation.v1.RecommendationService"}')


def write_register_body(onnx_path, manifest_path, out):
    with open(onnx_path, "rb") as f:
        onnx = base64.b64encode(f.read()).decode()
    with open(manifest_path) as f:
        manifest = f.read()
    with open(out, "w") as f:
        json.dump({"onnx": onnx, "manifest_json": manifest, "actor": "bench",
                   "reason": "scripts/bench.sh swap-latency model"}, f)


# ---------------------------------------------------------------- reading results

def load_runs(res):
    """runs.tsv: name group round rows cpu_ticks; plus the ghz JSON of each."""
    runs = []
    path = os.path.join(res, "runs.tsv")
    if not os.path.exists(path):
        return runs
    hz = int(read_meta(res).get("clk_tck", 100))
    with open(path) as f:
        for line in f:
            name, group, rnd, rows, ticks = line.split()
            r = {"name": name, "group": group, "round": int(rnd), "rows": int(rows),
                 "cpu_s": int(ticks) / hz}
            try:
                with open(os.path.join(res, name + ".json")) as g:
                    rep = json.load(g)
            except (OSError, ValueError) as e:
                r["error"] = "no ghz report (%s)" % e
                runs.append(r)
                continue
            lat = {int(d["percentage"]): d["latency"] / 1e6 for d in rep.get("latencyDistribution") or []}
            codes = rep.get("statusCodeDistribution") or {}
            details = rep.get("details") or []
            ok_lat = sorted(d["latency"] / 1e6 for d in details if d.get("status") == "OK")
            timed = group.startswith("swap") or group.startswith("train")
            if timed:
                # (start s, end s, latency ms) of each OK call; ghz's timestamp is the call's end.
                r["calls"] = [(end - d["latency"] / 1e9, end, d["latency"] / 1e6)
                              for d in details if d.get("status") == "OK"
                              for end in (epoch(d["timestamp"]),)]
            r.update({
                "count": rep.get("count", 0),
                "rps": rep.get("rps", 0.0),
                "p50": lat.get(50), "p99": lat.get(99),
                "p999": pct(ok_lat, 99.9), "max": ok_lat[-1] if ok_lat else None,
                "ok_lat": ok_lat if timed else None,
                "ok": codes.get("OK", 0),
                "failed": sum(v for k, v in codes.items() if k != "OK"),
                "errors": rep.get("errorDistribution") or {},
            })
            r["cpu_us_per_call"] = r["cpu_s"] * 1e6 / r["count"] if r["count"] else None
            r["client_us_per_call"] = None
            try:
                with open(os.path.join(res, name + ".client")) as g:
                    u, s_ = g.read().split("\n")[-2].split()  # last line: "%U %S"
                if r["count"]:
                    r["client_us_per_call"] = (float(u) + float(s_)) * 1e6 / r["count"]
            except (OSError, ValueError, IndexError):
                pass
            runs.append(r)
    return runs


def epoch(ts):
    """RFC 3339 UTC with up to nanoseconds ("2026-11-27T04:28:57.615802757Z") to seconds."""
    ts = ts.rstrip("Z")
    whole, _, frac = ts.partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + (float("0." + frac) if frac else 0.0)


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def read_meta(res):
    try:
        with open(os.path.join(res, "meta.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    return a / b if a is not None and b else None


def f(v, fmt="%.0f", none="n/a"):
    return none if v is None else fmt % v


def ms(v):
    return f(v, "%.3f")


def x(v):
    return f(v, "%.2f×")


# ---------------------------------------------------------------- sections

def section_predict(out, runs, meta):
    groups = [("noop", "no-op `grpc.health.v1.Health/Check`"),
              ("predict-1", "Predict, 1 row"),
              ("predict-100", "Predict, 100 rows"),
              ("predict-1000", "Predict, 1000 rows")]
    by = {g: [r for r in runs if r["group"] == g and "error" not in r] for g, _ in groups}
    if not any(by.values()):
        if meta.get("predict_skipped"):
            out.append("## Predict against a no-op handler on the same server\n\nNot run: %s\n" %
                       meta["predict_skipped"])
        return
    out.append("## Predict against a no-op handler on the same server\n")
    out.append("ghz on loopback, %s concurrent workers on one connection, %s per run, %s rounds "
               "(after a discarded warm-up) alternating no-op → 1 → 100 → 1000 rows in odd rounds and "
               "the reverse in even ones. Each figure is the median of the rounds; each ratio is that "
               "median over the no-op's median.\n" %
               (meta.get("concurrency"), meta.get("duration"), meta.get("rounds")))
    out.append("| call | RPS | rows/s | p50 ms | p99 ms | RPS ÷ no-op | p50 ÷ no-op | p99 ÷ no-op |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    keys = ("rps", "p50", "p99", "cpu_us_per_call", "client_us_per_call")
    m = {}
    for g, label in groups:
        rs = by[g]
        if rs:
            m[g] = {k: med([r[k] for r in rs]) for k in keys}
            m[g]["rows"] = rs[0]["rows"]
    base = m.get("noop") or {}
    for g, label in groups:
        if g not in m:
            continue
        v = m[g]
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, f(v["rps"]), f(v["rps"] * v["rows"]) if v["rows"] else "—", ms(v["p50"]), ms(v["p99"]),
            x(ratio(v["rps"], base.get("rps"))), x(ratio(v["p50"], base.get("p50"))),
            x(ratio(v["p99"], base.get("p99")))))
    out.append("")
    if "predict-1" in m and base:
        r1 = ratio(m["predict-1"]["rps"], base["rps"])
        paired = paired_ratios(by["noop"], by["predict-1"])
        verdict = "**met**" if r1 is not None and r1 >= 0.9 else "**missed**"
        out.append("Goal: single-row Predict at ≥ 0.90× the no-op's throughput — %s: %s "
                   "(ratio of the medians; per round, against the neighbouring no-op run: %s, median %s).  " % (
                       verdict, x(r1), ", ".join(x(p) for p in paired), x(med(paired))))
    if "predict-1000" in m:
        v = m["predict-1000"]
        out.append("1000-row batches: **%s rows/s** (%s calls/s)." % (f(v["rps"] * 1000), f(v["rps"], "%.1f")))
    out.append("")
    out.append("Where the time goes — CPU time per call, medians of the same runs. *Server* is the "
               "server process's user+system time from /proc/PID/stat over the run; *ghz* is the load "
               "generator's own (from /usr/bin/time). Both share the same 2 vCPUs, so throughput is "
               "roughly bounded by 2 s ÷ (server + ghz CPU per call).\n")
    out.append("| call | server CPU µs/call | server ÷ no-op | server CPU µs/row | ghz CPU µs/call | server share of CPU |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for g, label in groups:
        if g not in m:
            continue
        v = m[g]
        sv, cl = v["cpu_us_per_call"], v["client_us_per_call"]
        share = sv / (sv + cl) if sv is not None and cl is not None and sv + cl else None
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            label, f(sv), x(ratio(sv, base.get("cpu_us_per_call"))),
            f(sv / v["rows"], "%.2f") if sv is not None and v["rows"] else "—", f(cl), f(share and share * 100, "%.0f %%")))
    out.append("")
    ncpu = float(meta.get("nproc") or 2)
    est = []
    if "predict-1" in m and base.get("cpu_us_per_call") and m["predict-1"]["cpu_us_per_call"]:
        est.append("single-row Predict at ≈ %s the no-op's throughput (no-op server CPU per call ÷ "
                   "Predict's)" % x(base["cpu_us_per_call"] / m["predict-1"]["cpu_us_per_call"]))
    if "predict-1000" in m and m["predict-1000"]["cpu_us_per_call"]:
        est.append("1000-row batches at ≈ %s rows/s (%d vCPUs ÷ server CPU per row)" % (
            f(ncpu * 1e6 / (m["predict-1000"]["cpu_us_per_call"] / 1000)), ncpu))
    if est:
        out.append("Estimates, not measurements: with the server alone on the machine and a load "
                   "generator elsewhere, CPU per call would bound " + "; ".join(est) + ".\n")
    failed = [(r["name"], r["failed"], r["errors"]) for r in runs
              if r.get("failed") and r["group"] in ("noop", "predict-1", "predict-100", "predict-1000")]
    if failed:
        out.append("Failed calls: " + "; ".join("%s: %d %s" % (n, k, e) for n, k, e in failed) + "\n")
    out.append("<details><summary>Every run</summary>\n")
    out.append("| run | calls | RPS | p50 ms | p99 ms | server CPU µs/call | ghz CPU µs/call | non-OK |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for g, _ in groups:
        for r in sorted(by[g], key=lambda r: r["round"]):
            out.append("| %s | %d | %s | %s | %s | %s | %s | %d |" % (
                r["name"], r["count"], f(r["rps"]), ms(r["p50"]), ms(r["p99"]), f(r["cpu_us_per_call"]),
                f(r["client_us_per_call"]), r["failed"]))
    out.append("\n</details>\n")


def paired_ratios(base, other):
    b = {r["round"]: r for r in base}
    return [r["rps"] / b[r["round"]]["rps"] for r in other if r["round"] in b and b[r["round"]]["rps"]]


def read_swaps(res, mode):
    swaps = []
    for name in sorted(os.listdir(res)):
        if name.startswith("swaps-%s-" % mode) and name.endswith(".tsv"):
            with open(os.path.join(res, name)) as fh:
                for line in fh:
                    parts = line.split()
                    if len(parts) == 4:
                        # action, HTTP code, duration ms, start s
                        swaps.append((parts[0], parts[1], float(parts[2]) * 1000, int(parts[3]) / 1e9))
    return swaps


def section_swap(out, runs, meta, res):
    a = [r for r in runs if r["group"] == "swap-a" and "error" not in r]
    b = [r for r in runs if r["group"] == "swap-b" and "error" not in r]
    c = [r for r in runs if r["group"] == "swap-c" and "error" not in r]
    title = "## Predict latency during hot swaps\n"
    if not (a or b or c):
        if meta.get("swap_skipped"):
            out.append(title + "\nNot run: %s\n" % meta["swap_skipped"])
        return
    out.append(title)
    out.append("Single-row Predict, %s workers, %s per run, %s rounds ((a) (b) (c) in odd rounds, "
               "(c) (b) (a) in even ones) of (a) no swaps, (b) one swap per "
               "second alternating `POST /v1/models/%s:activate` and `POST /v1/models:rollback` — the "
               "goal's test — and (c) one `POST /v1/models/{version}:activate` per second cycling "
               "%s → %s → %s. In (b) the release flow keeps the previous version's session warm, so "
               "after the first activation a swap reads and checks the bytes from bbolt, swaps the "
               "atomic pointer and records the move; in (c) the target is never loaded, so every swap "
               "also creates an ONNX Runtime session and replays the golden rows. Medians of the "
               "rounds; p99.9 and max are over each run's OK calls (ghz per-call details).\n" % (
                   meta.get("concurrency"), meta.get("swap_duration"), meta.get("swap_rounds"),
                   meta.get("swap_version"), meta.get("model"), meta.get("swap_version"), meta.get("cold_version")))
    out.append("| load | calls | failed calls | RPS | p50 ms | p99 ms | p99.9 ms | max ms | p99 ÷ (a) | pooled p99 ms | pooled p99 ÷ (a) |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    p99a = med([r["p99"] for r in a])

    def pooled(rs):
        return pct(sorted(v for r in rs for v in (r["ok_lat"] or [])), 99)

    pa = pooled(a)
    for label, rs in (("(a) no swaps", a), ("(b) activate/rollback every 1 s", b), ("(c) cold activate every 1 s", c)):
        if not rs:
            continue
        p99 = med([r["p99"] for r in rs])
        out.append("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, sum(r["count"] for r in rs), sum(r["failed"] for r in rs), f(med([r["rps"] for r in rs])),
            ms(med([r["p50"] for r in rs])), ms(p99), ms(med([r["p999"] for r in rs])),
            ms(max((r["max"] for r in rs if r["max"] is not None), default=None)), x(ratio(p99, p99a)),
            ms(pooled(rs)), x(ratio(pooled(rs), pa))))
    out.append("")
    out.append("*p99* is the median of the rounds' p99s; *pooled p99* is the p99 of all OK calls of "
               "all rounds of that load together.\n")

    def per_round(rs):
        ba = {r["round"]: r for r in a}
        return [r["p99"] / ba[r["round"]]["p99"] for r in sorted(rs, key=lambda r: r["round"])
                if r["round"] in ba and ba[r["round"]]["p99"]]

    for label, rs, mode, goal in (("(b)", b, "warm", True), ("(c)", c, "cold", False)):
        if not rs:
            continue
        p99r = ratio(med([r["p99"] for r in rs]), p99a)
        failed = sum(r["failed"] for r in rs)
        swaps = read_swaps(res, mode)
        ok = [s for s in swaps if s[1] == "200"]
        met = p99r is not None and p99r <= 1.2 and failed == 0 and ok and len(ok) == len(swaps)
        head = ("Goal, %s: p99 with swaps ≤ 1.2× p99 without and zero failed calls — %s: " % (
            label, "**met**" if met else "**missed**")) if goal else "%s, for comparison (no goal): " % label
        durs = sorted(s[2] for s in ok)
        out.append(head + "p99 ratio %s (per round %s; pooled %s), %d failed Predict calls; %d swaps issued, %d answered "
                   "200%s, REST call duration median %s ms, max %s ms.  " % (
                       x(p99r), ", ".join(x(p) for p in per_round(rs)), x(ratio(pooled(rs), pa)), failed, len(swaps), len(ok),
                       " (%d activate, %d rollback)" % (sum(1 for s in ok if s[0] == "activate"),
                                                          sum(1 for s in ok if s[0] == "rollback")) if mode == "warm" else "",
                       f(med(durs), "%.1f"), f(durs[-1] if durs else None, "%.1f")))
        near, other = split_near_swaps(rs, swaps)
        if near:
            out.append("%s within the same runs: the %d calls in flight during a swap (from its REST "
                       "call's start to %d ms after its end) had p99 %s ms and max %s ms; the other %d "
                       "calls p99 %s ms — ratio %s.  " % (
                           label, len(near), NEAR_TAIL_MS, ms(pct(near, 99)), ms(near[-1]), len(other),
                           ms(pct(other, 99)), x(ratio(pct(near, 99), pct(other, 99)))))
        bad = [s for s in swaps if s[1] != "200"]
        if bad:
            out.append("%s swap calls that did not answer 200: %s.  " % (
                label, ", ".join("%s→%s" % (s[0], s[1]) for s in bad[:10])))
        errs = {}
        for r in rs:
            for k, v in r["errors"].items():
                errs[k] = errs.get(k, 0) + v
        if errs:
            out.append("%s errors seen by ghz: %s.  " % (label, "; ".join("%s ×%d" % kv for kv in errs.items())))
    out.append("")


NEAR_TAIL_MS = 100


def split_near_swaps(rs, swaps):
    """Latencies (sorted) of the calls of runs rs that overlap a swap window
    [start, end + NEAR_TAIL_MS], and of the rest."""
    wins = sorted((s[3], s[3] + s[2] / 1000 + NEAR_TAIL_MS / 1000) for s in swaps if len(s) > 3)
    near, other = [], []
    for r in rs:
        for start, end, lat in r.get("calls") or []:
            hit = False
            for ws, we in wins:
                if ws > end:
                    break
                if we >= start:
                    hit = True
                    break
            (near if hit else other).append(lat)
    return sorted(near), sorted(other)


GOBENCH = re.compile(r"^Benchmark(\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$")


def section_gobench(out, res, meta):
    path = os.path.join(res, "gobench.txt")
    if meta.get("gobench_skipped"):
        out.append("## Go micro-benchmarks (internal/serving)\n\nNot run: %s\n" % meta["gobench_skipped"])
        return
    if not os.path.exists(path):
        return
    vals = {}
    with open(path) as fh:
        for line in fh:
            mt = GOBENCH.match(line.strip())
            if not mt:
                continue
            metrics = {}
            toks = mt.group(3).split()
            for i in range(0, len(toks) - 1, 2):
                try:
                    metrics[toks[i + 1]] = float(toks[i])
                except ValueError:
                    pass
            vals.setdefault(mt.group(1), []).append(metrics)
    out.append("## Go micro-benchmarks (internal/serving)\n")
    out.append("`%s` — medians of `-count` runs. ONNX Runtime is one `Session.Run` through "
               "onnxruntime_go (cgo); pure Go is `model.MLP.Forward`, the int8 forward pass "
               "`validate` compares against.\n" % meta.get("gobench_cmd", "go test -bench"))
    if str(meta.get("gobench_rc", "0")) != "0":
        out.append("**`go test` exited %s**; the figures below are what it printed before failing "
                   "(see the log in the run's output).\n" % meta.get("gobench_rc"))

    def m(name, unit):
        return med([v.get(unit) for v in vals.get(name, [])])

    sizes = sorted({int(k.split("=")[1]) for k in vals if "batch=" in k})
    if sizes:
        out.append("| batch | ONNX Runtime ns/op | pure Go ns/op | ORT ÷ Go | ORT ns/row | Go ns/row | ORT allocs/op |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|")
        for n in sizes:
            o, g = m("SessionRun/batch=%d" % n, "ns/op"), m("ForwardGo/batch=%d" % n, "ns/op")
            out.append("| %d | %s | %s | %s | %s | %s | %s |" % (
                n, f(o), f(g), x(ratio(o, g)), f(m("SessionRun/batch=%d" % n, "ns/row"), "%.1f"),
                f(m("ForwardGo/batch=%d" % n, "ns/row"), "%.1f"), f(m("SessionRun/batch=%d" % n, "allocs/op"))))
        out.append("")
    if "AcquireRelease" in vals:
        out.append("`Manager.Acquire`+`Release` (the Predict path's only shared state), all Ps in parallel: "
                   "%s ns/op, %s allocs/op.\n" % (f(m("AcquireRelease", "ns/op"), "%.1f"),
                                                  f(m("AcquireRelease", "allocs/op"))))


def section_pipeline(out, res, meta):
    steps = [("generate-data", "pipeline-generate"), ("train", "pipeline-train"), ("validate", "pipeline-validate")]
    if meta.get("pipeline_skipped"):
        out.append("## Model pipeline at 100,000 samples\n\nNot run: %s\n" % meta["pipeline_skipped"])
        return
    rows, total, peak = [], 0.0, 0
    for label, name in steps:
        path = os.path.join(res, name + ".time")
        if not os.path.exists(path):
            continue
        wall, rss, rc, user, sys_ = None, None, None, None, None
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if line.startswith("Elapsed (wall clock) time"):
                    wall = parse_clock(line.rsplit(" ", 1)[1])
                elif line.startswith("Maximum resident set size"):
                    rss = int(line.rsplit(" ", 1)[1]) / 1024
                elif line.startswith("Exit status"):
                    rc = int(line.rsplit(" ", 1)[1])
                elif line.startswith("User time (seconds)"):
                    user = float(line.rsplit(" ", 1)[1])
                elif line.startswith("System time (seconds)"):
                    sys_ = float(line.rsplit(" ", 1)[1])
                elif line.startswith("Command terminated by signal"):
                    rc = "signal " + line.rsplit(" ", 1)[1]
        if rc is None:
            rc = 0
        rows.append((label, wall, rss, user, sys_, rc))
        total += wall or 0
        peak = max(peak, rss or 0)
    if not rows:
        return
    out.append("## Model pipeline at 100,000 samples\n")
    out.append("Each step under `/usr/bin/time -v`, one after another, after the server was stopped:\n")
    out.append("```sh\n%s\n```\n" % meta.get("pipeline_cmds", ""))
    out.append("| step | wall s | CPU s (user+sys) | peak RSS MiB | exit |")
    out.append("|---|---:|---:|---:|---|")
    for label, wall, rss, user, sys_, rc in rows:
        cpu = (user or 0) + (sys_ or 0) if user is not None else None
        out.append("| %s | %s | %s | %s | %s |" % (label, f(wall, "%.1f"), f(cpu, "%.1f"), f(rss, "%.0f"), rc))
    cpu_total = sum((r[3] or 0) + (r[4] or 0) for r in rows)
    out.append("| **total** | **%.1f** | **%.1f** | max %.0f | |" % (total, cpu_total, peak))
    out.append("")
    verdict = "**met**" if total < 20 and len(rows) == len(steps) else "**missed**"
    out.append("Goal: generate-data + train + validate under 20 s — %s: %.1f s wall "
               "(%.2f× the budget), %.1f s of CPU." % (verdict, total, total / 20, cpu_total))
    for label, name in steps:
        if meta.get("pipeline_error_" + name.split("-")[1]):
            out.append("`%s` exited non-zero: `%s`" % (label, meta["pipeline_error_" + name.split("-")[1]]))
    out.append("")


def parse_clock(s):
    parts = [float(p) for p in s.split(":")]
    v = 0.0
    for p in parts:
        v = v * 60 + p
    return v


# ---------------------------------------------------------------- training jobs

TRAIN_GROUPS = [("train", "`--train-workers 1` (default)"), ("train2", "`--train-workers 2`")]
FINAL = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")


def load_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def short(enum):
    """JOB_STATE_RUNNING → RUNNING, JOB_PHASE_TRAINING → TRAINING."""
    return (enum or "?").replace("JOB_STATE_", "").replace("JOB_PHASE_", "")


def read_jobs(res):
    """jobs.tsv (name, id) with each job's final record, its record as the
    load ended, and the phase changes from its watch stream: [(t, phase)]."""
    jobs = {}
    path = os.path.join(res, "jobs.tsv")
    if not os.path.exists(path):
        return jobs
    with open(path) as fh:
        for line in fh:
            name, jid = line.split()
            rec = (load_json(os.path.join(res, name + ".job.json")) or {}).get("job") or {}
            atend = (load_json(os.path.join(res, name + ".atend.json")) or {}).get("job")
            phases = []
            try:
                with open(os.path.join(res, name + ".watch.jsonl")) as w:
                    for wl in w:
                        try:
                            ev = json.loads(wl)["result"]["event"]
                        except (ValueError, KeyError, TypeError):
                            continue
                        if not phases or phases[-1][1] != ev.get("phase"):
                            phases.append((epoch(ev["time"]), ev.get("phase")))
            except OSError:
                pass
            j = {"name": name, "id": jid, "rec": rec, "atend": atend, "phases": phases}
            for k in ("createdAt", "startedAt", "finishedAt"):
                j[k] = epoch(rec[k]) if rec.get(k) else None
            jobs[name] = j
    return jobs


def phase_at(phases, t):
    cur = None
    for pt, ph in phases:
        if pt <= t:
            cur = ph
        else:
            break
    return cur


def phase_durations(j):
    """Seconds in each phase, from the watch stream's phase changes up to finishedAt."""
    ph = j["phases"]
    end = j["finishedAt"]
    out = {}
    for i, (t, p) in enumerate(ph):
        if p == "JOB_PHASE_DONE":
            break
        nxt = ph[i + 1][0] if i + 1 < len(ph) else end
        if nxt is not None:
            out[short(p)] = out.get(short(p), 0) + nxt - t
    return out


def read_time_v(path):
    """wall s, user s, sys s, max RSS MiB, exit status from /usr/bin/time -v."""
    wall = user = sys_ = rss = None
    rc = 0
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("Elapsed (wall clock) time"):
                wall = parse_clock(line.rsplit(" ", 1)[1])
            elif line.startswith("Maximum resident set size"):
                rss = int(line.rsplit(" ", 1)[1]) / 1024
            elif line.startswith("Exit status"):
                rc = int(line.rsplit(" ", 1)[1])
            elif line.startswith("User time (seconds)"):
                user = float(line.rsplit(" ", 1)[1])
            elif line.startswith("System time (seconds)"):
                sys_ = float(line.rsplit(" ", 1)[1])
            elif line.startswith("Command terminated by signal"):
                rc = "signal " + line.rsplit(" ", 1)[1]
    return wall, user, sys_, rss, rc


def section_training(out, runs, meta, res):
    title = "## Predict while a training job runs\n"
    if meta.get("training_skipped"):
        out.append(title + "\nNot run: %s\n" % meta["training_skipped"])
        return
    by = {g: [r for r in runs if r["group"] == g and "error" not in r]
          for p, _ in TRAIN_GROUPS for g in (p + "-a", p + "-b")}
    if not any(by.values()):
        return
    jobs = read_jobs(res)
    body = meta.get("train_body", "")
    out.append(title)
    out.append("Single-row Predict with the same ghz settings as above (%s workers, one connection%s), %s per "
               "run: (a) no job; (b) right after `POST /v1/training-jobs` with `%s`, once "
               "`GET /v1/training-jobs/{id}` (polled every 0.1 s) reads RUNNING. The script waits for each job "
               "to finish before the next run. On the default server, %s rounds ((a) (b) in odd rounds, "
               "(b) (a) in even ones); then one round on a second server started `--train-workers 2`. "
               "Medians of the rounds; p99.9, max and pooled p99 are over the OK calls (ghz per-call details).\n" % (
                   meta.get("concurrency"),
                   ", **capped at %s calls/s** (`--train-rps`)" % meta["train_rps"] if meta.get("train_rps") else
                   ", as fast as they go", meta.get("train_duration"), body, meta.get("train_rounds")))
    out.append("| server | load | runs | calls | failed | RPS | p50 ms | p99 ms | p99.9 ms | max ms | RPS ÷ (a) | p99 ÷ (a) | pooled p99 ÷ (a) |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def pooled(rs):
        return pct(sorted(v for r in rs for v in (r["ok_lat"] or [])), 99)

    summary = {}
    for p, label in TRAIN_GROUPS:
        a, b = by[p + "-a"], by[p + "-b"]
        if not (a or b):
            continue
        rps_a, p99_a, pa = med([r["rps"] for r in a]), med([r["p99"] for r in a]), pooled(a)
        for load, rs in (("(a) no job", a), ("(b) job running", b)):
            if not rs:
                continue
            rps, p99 = med([r["rps"] for r in rs]), med([r["p99"] for r in rs])
            out.append("| %s | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label, load, len(rs), sum(r["count"] for r in rs), sum(r["failed"] for r in rs), f(rps),
                ms(med([r["p50"] for r in rs])), ms(p99), ms(med([r["p999"] for r in rs])),
                ms(max((r["max"] for r in rs if r["max"] is not None), default=None)),
                x(ratio(rps, rps_a)), x(ratio(p99, p99_a)), x(ratio(pooled(rs), pa))))
        ba = {r["round"]: r for r in a}
        per_round = [r["p99"] / ba[r["round"]]["p99"] for r in sorted(b, key=lambda r: r["round"])
                     if r["round"] in ba and ba[r["round"]]["p99"]]
        summary[p] = {"ratio": ratio(med([r["p99"] for r in b]), p99_a), "per_round": per_round,
                      "pooled": ratio(pooled(b), pa), "failed": sum(r["failed"] for r in a + b),
                      "rps": ratio(med([r["rps"] for r in b]), rps_a), "pa": pa, "b": b, "rps_a": rps_a}
    out.append("")
    # Did the job cover the whole load window? Per-phase tail within (b).
    notes, phase_rows = [], []
    for p, label in TRAIN_GROUPS:
        if p not in summary:
            continue
        per_phase, secs = {}, {}
        for r in summary[p]["b"]:
            j = jobs.get(r["name"])
            calls = r.get("calls") or []
            if not j or not calls:
                continue
            w0, w1 = min(c[0] for c in calls), max(c[1] for c in calls)
            st, fin = j["startedAt"], j["finishedAt"]
            at = j["atend"] or {}
            if fin is not None and fin < w1:
                notes.append("%s: the job (%s) **ended %.1f s before the load did** (it ran for %.0f %% of the "
                             "%.1f s load window)" % (r["name"], j["id"], w1 - fin,
                                                      100 * max(0.0, fin - max(w0, st or w0)) / (w1 - w0), w1 - w0))
            else:
                notes.append("%s: job %s RUNNING for the whole %.1f s load window (phase %s, epoch %s when the load "
                             "ended; it finished %s s later)" % (
                                 r["name"], j["id"], w1 - w0, short((at.get("progress") or {}).get("phase")),
                                 (at.get("progress") or {}).get("epoch", "?"),
                                 f(fin - w1 if fin is not None else None, "%.1f")))
            # seconds of the load window spent in each phase
            bounds = [(t, short(ph)) for t, ph in j["phases"] if ph != "JOB_PHASE_DONE"]
            for i, (t, ph) in enumerate(bounds):
                t_end = bounds[i + 1][0] if i + 1 < len(bounds) else (fin if fin is not None else w1)
                span = max(0.0, min(t_end, w1) - max(t, w0))
                secs[ph] = secs.get(ph, 0.0) + span
                secs["all, while the job ran"] = secs.get("all, while the job ran", 0.0) + span
            if fin is not None and fin < w1:
                secs["after the job ended"] = secs.get("after the job ended", 0.0) + w1 - max(fin, w0)
            for c0, c1, lat in calls:
                if fin is not None and c1 > fin:
                    ph = "after the job ended"
                else:
                    ph = short(phase_at(j["phases"], c1)) if j["phases"] else "?"
                    per_phase.setdefault("all, while the job ran", []).append(lat)
                per_phase.setdefault(ph, []).append(lat)
        running = sorted(per_phase.get("all, while the job ran", []))
        summary[p]["running_p99"] = pct(running, 99)
        summary[p]["after"] = len(per_phase.get("after the job ended", []))
        for ph in ("all, while the job ran", "QUEUED", "GENERATING", "TRAINING", "EVALUATING", "REGISTERING",
                   "after the job ended"):
            if ph in per_phase:
                lat = sorted(per_phase[ph])
                phase_rows.append("| %s | %s | %s | %d | %s | %s | %s | %s |" % (
                    label, ph.lower(), f(secs.get(ph), "%.2f"), len(lat), f(ratio(len(lat), secs.get(ph))),
                    x(ratio(ratio(len(lat), secs.get(ph)), summary[p]["rps_a"])),
                    ms(pct(lat, 99)), x(ratio(pct(lat, 99), summary[p]["pa"]))))
    s = summary.get("train")
    if s:
        met = s["ratio"] is not None and s["ratio"] <= 1.5 and bool(s["b"])
        out.append("Goal: Predict p99 while a 100,000-sample job runs ≤ 1.5× p99 with no job — %s: "
                   "%s (per round %s; pooled %s); throughput %s of (a); %d failed Predict calls in (a) and (b).  " % (
                       "**met**" if met else "**missed**", x(s["ratio"]), ", ".join(x(v) for v in s["per_round"]) or "n/a",
                       x(s["pooled"]), x(s["rps"]), s["failed"]))
        if s.get("after"):
            out.append("%d of the (b) calls came after their job had ended; over only the calls while a job ran, "
                       "p99 %s ms, %s the pooled (a) p99.  " % (
                           s["after"], ms(s.get("running_p99")), x(ratio(s.get("running_p99"), s["pa"]))))
    s2 = summary.get("train2")
    if s2:
        out.append("For comparison, `--train-workers 2` (no goal): p99 (b)/(a) %s (pooled %s), throughput %s of "
                   "its own (a), %d failed calls; over only the calls while the job ran, p99 %s the pooled (a) p99.  " % (
                       x(s2["ratio"]), x(s2["pooled"]), x(s2["rps"]), s2["failed"],
                       x(ratio(s2.get("running_p99"), s2["pa"]))))
    out.append("")

    out.append("<details><summary>Every run</summary>\n")
    out.append("| run | calls | RPS | p50 ms | p99 ms | p99.9 ms | server CPU µs/call | non-OK |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for g in by:
        for r in sorted(by[g], key=lambda r: r["round"]):
            out.append("| %s | %d | %s | %s | %s | %s | %s | %d |" % (
                r["name"], r["count"], f(r["rps"]), ms(r["p50"]), ms(r["p99"]), ms(r["p999"]),
                f(r["cpu_us_per_call"]), r["failed"]))
    out.append("\n*Server CPU* in (b) includes the job's.\n\n</details>\n")
    if notes:
        out.append("Job coverage of the (b) runs: " + "; ".join(notes) + ".\n")
    if phase_rows:
        out.append("(b) calls by the job's phase when they ended (phase times from the job's "
                   "`GET /v1/training-jobs/{id}:watch` stream), all (b) runs of a server together; *s of load* is "
                   "the time the load spent in that phase, *calls/s* the calls per second of it:\n")
        out.append("| server | job phase | s of load | calls | calls/s | ÷ (a) RPS | p99 ms | ÷ pooled (a) p99 |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|")
        out.extend(phase_rows)
        out.append("")

    # Job wall time, per job, then against the CLI pipeline.
    if jobs:
        out.append("### The job's wall time against the CLI pipeline\n")
        out.append("Every job of the run, from its record (`createdAt`, `startedAt`, `finishedAt`) and its "
                   "watch stream (phases). The *train-c* jobs ran with no load on the default server, after the rounds.\n")
        out.append("| job | server | Predict load | state | version | epochs | created→finished s | generating s | training s | evaluating s | registering s |")
        out.append("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|")
        for name in sorted(jobs, key=lambda n: (n.startswith("train2"), n.startswith("train-c"), n)):
            j = jobs[name]
            rec = j["rec"]
            d = phase_durations(j)
            wall = j["finishedAt"] - j["createdAt"] if j["finishedAt"] and j["createdAt"] else None
            out.append("| %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name, j["id"], "`--train-workers 2`" if name.startswith("train2") else "`--train-workers 1`",
                "none" if name.startswith("train-c") else "during the first %s" % meta.get("train_duration"),
                short(rec.get("state")), rec.get("version", "?"), (rec.get("progress") or {}).get("epoch", "?"),
                f(wall, "%.1f"), f(d.get("GENERATING"), "%.1f"), f(d.get("TRAINING"), "%.1f"),
                f(d.get("EVALUATING"), "%.1f"), f(d.get("REGISTERING"), "%.2f")))
        out.append("")
    steps = [("generate-data", "generate"), ("train", "train"), ("validate", "validate")]
    hz = int(meta.get("clk_tck", 100))
    pairs, step_vals = [], {}
    for r in range(1, int(meta.get("train_wall_rounds") or 1) + 1):
        c = jobs.get("train-c-r%d" % r)
        cli = {}
        for label, step in steps:
            path = os.path.join(res, "train-cli-r%d-%s.time" % (r, step))
            if os.path.exists(path):
                cli[label] = read_time_v(path)
                step_vals.setdefault(label, []).append(cli[label])
        if not c:
            continue
        jwall = c["finishedAt"] - c["createdAt"] if c["finishedAt"] and c["createdAt"] else None
        ticks = meta.get("train_c_r%d_server_cpu_ticks" % r)
        jcpu = int(ticks) / hz if ticks else None
        cw = sum(v[0] or 0 for v in cli.values()) if len(cli) == len(steps) else None
        cc = sum((v[1] or 0) + (v[2] or 0) for v in cli.values()) if len(cli) == len(steps) else None
        jm = ((load_json(os.path.join(res, "train-c-r%d.model.json" % r)) or {}).get("model") or {}).get("sha256")
        cm = ((load_json(os.path.join(res, "train-cli-r%d.manifest.json" % r)) or {}).get("model") or {}).get("sha256")
        pairs.append({"r": r, "c": c, "jwall": jwall, "jcpu": jcpu, "cli": cli, "cw": cw, "cc": cc,
                      "same": bool(jm) and jm == cm, "jm": jm, "cm": cm})
    if meta.get("train_cli_skipped"):
        out.append("CLI comparison not (fully) run: %s\n" % meta["train_cli_skipped"])
    if pairs:
        out.append("Each *train-c* job against the CLI pipeline on the same data, run right after it with the "
                   "server idle (each step under `/usr/bin/time -v`; `$VERSION` is that job's version, so the "
                   "model bytes can be compared):\n")
        out.append("```sh\n%s\n```\n" % meta.get("train_cli_cmds", ""))
        out.append("| pair | job wall s (created→finished) | job CPU s (server process) | CLI wall s (generate + train + validate) | CLI CPU s | job ÷ CLI wall | job ÷ CLI CPU | same model bytes |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for pr in pairs:
            cli = pr["cli"]
            parts = " + ".join(f(cli[l][0], "%.1f") for l, _ in steps if l in cli)
            out.append("| %d (%s, %s) | %s | %s | %s (%s) | %s | %s | %s | %s |" % (
                pr["r"], pr["c"]["id"], pr["c"]["rec"].get("version", "?"), f(pr["jwall"], "%.1f"),
                f(pr["jcpu"], "%.1f"), f(pr["cw"], "%.1f"), parts, f(pr["cc"], "%.1f"),
                x(ratio(pr["jwall"], pr["cw"])), x(ratio(pr["jcpu"], pr["cc"])),
                ("yes, sha256 `%s…`" % pr["jm"][:12]) if pr["same"] else "**no** (job %s, CLI %s)" % (pr["jm"], pr["cm"])))
        mw, mc = med([p_["jwall"] for p_ in pairs]), med([p_["jcpu"] for p_ in pairs])
        cw, cc = med([p_["cw"] for p_ in pairs]), med([p_["cc"] for p_ in pairs])
        out.append("| **median** | **%s** | **%s** | **%s** | **%s** | **%s** | **%s** | |" % (
            f(mw, "%.1f"), f(mc, "%.1f"), f(cw, "%.1f"), f(cc, "%.1f"), x(ratio(mw, cw)), x(ratio(mc, cc))))
        out.append("")
        if step_vals:
            out.append("CLI steps, medians: " + "; ".join(
                "`%s` %s s wall, %s s CPU, peak RSS %s MiB%s" % (
                    l, f(med([v[0] for v in vs]), "%.1f"), f(med([(v[1] or 0) + (v[2] or 0) for v in vs]), "%.1f"),
                    f(med([v[3] for v in vs]), "%.0f"),
                    "" if all(v[4] == 0 for v in vs) else " (exit %s)" % ", ".join(str(v[4]) for v in vs))
                for l, _ in steps for vs in (step_vals.get(l, []),) if vs) + ".\n")
        out.append("What is compared. *Job*: simulate 100,000 containers (`--train-workers` goroutines), train "
                   "(same, early stopping), simulate a 20,000-container held-out set and score the new model, the "
                   "**active model** and the VPA baseline on it (pure Go), encode, **register** (checksum, I/O "
                   "signature and golden rows in ONNX Runtime, one bbolt transaction); no activation (policy "
                   "never); all in memory. *CLI*: three processes; `generate-data` simulates the same containers "
                   "and writes the .npz, `train` reads it, trains, simulates its own 20,000-container held-out set "
                   "and scores the new model for the manifest, writes the files; `validate` re-checks checksum, "
                   "signature and golden rows, compares ONNX Runtime with pure Go, and scores the model on a third "
                   "fresh 20,000-container set against its gates. The CLI's generator and trainer use one goroutine "
                   "per CPU (%s here).\n" % meta.get("nproc", "?"))
    for k in sorted(meta):
        if k.startswith("train_cli_error_") or (k.startswith("train") and k.endswith("_error")):
            out.append("`%s`: %s  " % (k, meta[k]))
    out.append("")


def markdown(res):
    meta = read_meta(res)
    runs = load_runs(res)
    out = ["# recommendation-api benchmarks\n"]
    out.append("Run of `scripts/bench.sh` at %s on %s: %s (%s vCPUs, shared with other builds — "
               "absolute numbers are noisy, compare the ratios, which come from the same run). "
               "Load average %s before, %s after. Commit %s, %s, ghz %s, ONNX Runtime `%s`.\n" % (
                   meta.get("date"), meta.get("host", "?"), meta.get("cpu", "?"), meta.get("nproc"),
                   meta.get("load_before"), meta.get("load_after"), meta.get("commit"),
                   meta.get("go"), meta.get("ghz"), meta.get("ort")))
    section_predict(out, runs, meta)
    section_swap(out, runs, meta, res)
    section_training(out, runs, meta, res)
    section_gobench(out, res, meta)
    section_pipeline(out, res, meta)
    return "\n".join(out).rstrip() + "\n"


def main(argv):
    if len(argv) >= 3 and argv[1] == "data":
        write_data(argv[2])
    elif len(argv) == 5 and argv[1] == "register-body":
        write_register_body(argv[2], argv[3], argv[4])
    elif len(argv) == 3 and argv[1] == "markdown":
        sys.stdout.write(markdown(argv[2]))
    elif len(argv) >= 3 and argv[1] == "meta":
        # meta RESULTS_DIR key=value...: merge into meta.json
        path = os.path.join(argv[2], "meta.json")
        meta = read_meta(argv[2])
        for kv in argv[3:]:
            k, _, v = kv.partition("=")
            meta[k] = v
        with open(path, "w") as fh:
            json.dump(meta, fh, indent=1)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
