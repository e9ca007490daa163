#!/usr/bin/env python3
"""Helpers for scripts/bench.sh (python3 standard library only).

  report.py data DIR                    write predict-{1,100,1000}.json request bodies into DIR
  report.py register-body ONNX MANIFEST OUT   write the POST /v1/models JSON body
  report.py markdown RESULTS_DIR        print the markdown report of one bench.sh run

RESULTS_DIR is what bench.sh fills: meta.json, runs.tsv (one line per ghz run),
ghz JSON reports, swaps-*.tsv, gobench.txt, pipeline-*.time.

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
            if group.startswith("swap"):
                # (start s, end s, latency ms) of each OK call; ghz's timestamp is the call's end.
                r["calls"] = [(end - d["latency"] / 1e9, end, d["latency"] / 1e6)
                              for d in details if d.get("status") == "OK"
                              for end in (epoch(d["timestamp"]),)]
            r.update({
                "count": rep.get("count", 0),
                "rps": rep.get("rps", 0.0),
                "p50": lat.get(50), "p99": lat.get(99),
                "p999": pct(ok_lat, 99.9), "max": ok_lat[-1] if ok_lat else None,
                "ok_lat": ok_lat if group.startswith("swap") else None,
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
        return
    out.append("## Predict against a no-op handler on the same server (issue 3)\n")
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
        out.append("Goal (issue 3): single-row Predict at ≥ 0.90× the no-op's throughput — %s: %s "
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
              if r.get("failed") and not r["group"].startswith("swap")]
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
    title = "## Predict latency during hot swaps (issue 4)\n"
    if not (a or b or c):
        if meta.get("swap_skipped"):
            out.append(title + "\nNot run: %s\n" % meta["swap_skipped"])
        return
    out.append(title)
    out.append("Single-row Predict, %s workers, %s per run, %s rounds ((a) (b) (c) in odd rounds, "
               "(c) (b) (a) in even ones) of (a) no swaps, (b) one swap per "
               "second alternating `POST /v1/models/%s:activate` and `POST /v1/models:rollback` — the "
               "issue's test — and (c) one `POST /v1/models/{version}:activate` per second cycling "
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
        head = ("Goal (issue 4), %s: p99 with swaps ≤ 1.2× p99 without and zero failed calls — %s: " % (
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
        out.append("## Model pipeline at 100,000 samples (issue 2)\n\nNot run: %s\n" % meta["pipeline_skipped"])
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
    out.append("## Model pipeline at 100,000 samples (issue 2)\n")
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
    out.append("Goal (issue 2): generate-data + train + validate under 20 s — %s: %.1f s wall "
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


def section_training_todo(out):
    out.append("## TODO (issue 5): Predict p99 while a training job runs\n")
    out.append("Not measured yet — the in-process training API (`POST /v1/training-jobs`) is being built. "
               "When it lands, `bench_training_job` in scripts/bench.sh should run single-row Predict load "
               "twice in one run: (a) no job, (b) while a 100,000-sample job runs, and report p99 (b)/(a) "
               "(goal ≤ 1.5×) and the job's wall time against the CLI pipeline's total above.\n")


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
    section_gobench(out, res, meta)
    section_pipeline(out, res, meta)
    section_training_todo(out)
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
