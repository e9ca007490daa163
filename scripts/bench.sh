#!/usr/bin/env bash
# Benchmarks of recommendation-api, every figure a ratio measured in the same
# run (the 2-vCPU machine is shared and noisy). `make bench` runs this after
# building bin/recommendation-api, installing ONNX Runtime and ghz.
#
#   1-3. Predict with 1, 100 and 1000 rows against a no-op gRPC handler
#        (grpc.health.v1.Health/Check) on the same server: ghz runs alternate
#        no-op, 1, 100, 1000 rows for --rounds rounds; medians and ratios.
#   4.   Predict p99 with and without a hot swap every second over REST:
#        (b) activate/rollback of a freshly trained version (the issue's
#        test; the release flow keeps the previous session warm) and (c)
#        activations cycling through three versions (a new session each time).
#   5.   Predict p99 while a 100,000-sample training job runs (issue 5):
#        single-row Predict for --train-duration with (a) no job and (b) a
#        job started over REST (POST /v1/training-jobs, activation never)
#        and RUNNING, --train-rounds rounds on the same server; then (c) a
#        job with no load, timed from its record, and the CLI pipeline on the
#        same data (generate-data --seed 1, train --seed 1, validate),
#        alternating, --train-wall-rounds pairs; then (a) and (b) once more
#        on a server started --train-workers 2.
#   6.   Go micro-benchmarks of internal/serving (ONNX Runtime vs pure Go).
#   7.   Wall time and peak RSS of generate-data, train, validate at 100,000
#        samples (after the server is stopped).
#   8.   Two majors side by side: Predict of both formats while each major is
#        rolled back and re-activated every second, against no swaps.
#   9.   Replicas (etcd mode): three in-process servers on one real etcd
#        (Debian etcd-server) under Predict load; --replica-rollbacks
#        activate+rollback pairs, each through another replica; the
#        distribution of the time from a call's return until all three answer
#        with the new version, and the failed Predict calls (must be 0).
#        BenchmarkReplicaConvergence in cmd/recommendation-api.
#
# Usage: scripts/bench.sh [--out FILE] [--concurrency 8] [--duration 3s]
#          [--rounds 5] [--swap-duration 6s] [--swap-rounds 5]
#          [--train-duration 12s] [--train-rounds 2] [--train-wall-rounds 2]
#          [--train-rps N] [--skip-train-workers2]
#          [--benchtime 500ms] [--skip-predict] [--skip-swap] [--skip-training]
#          [--skip-go] [--skip-pipeline] [--skip-majors] [--skip-replicas] [--replica-rollbacks 50]
#          [--only predict,swap,training,go,pipeline,majors,replicas]
#          [--keep] [--deadline SECONDS]
# --train-rps caps the training-job section's Predict load at N calls/s (ghz
# --rps); by default it runs as fast as it can, like the other sections.
# --only runs just the sections named (comma-separated), e.g.
# `scripts/bench.sh --only training` (about 2½ minutes).
# Prints the markdown report, and writes it to FILE with --out.
# Bounded: a watchdog stops everything after --deadline seconds (default 1200);
# the servers it starts are always stopped and the temp directory removed
# (--keep leaves the raw results for inspection).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

OUT=""
CONC=8
DUR=3s
ROUNDS=5
SWAP_DUR=6s
SWAP_ROUNDS=5
BENCHTIME=500ms
GOCOUNT=3
TRAIN_DUR=12s
TRAIN_ROUNDS=2
TRAIN_WALL_ROUNDS=2
TRAIN_RPS=""
LOAD_RPS=""  # ghz --rps for ghz_run; set only around the training-job runs
SKIP_PREDICT=0 SKIP_SWAP=0 SKIP_TRAINING=0 SKIP_TRAIN_W2=0 SKIP_GO=0 SKIP_PIPELINE=0 SKIP_MAJORS=0 SKIP_REPLICAS=0 KEEP=0
REPLICA_ROLLBACKS=50
ONLY=""
DEADLINE=1200
PIPELINE_SAMPLES=100000
BIN=${BIN:-bin/recommendation-api}

die() { echo "bench: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --swap-duration) SWAP_DUR=$2; shift 2 ;;
    --swap-rounds) SWAP_ROUNDS=$2; shift 2 ;;
    --benchtime) BENCHTIME=$2; shift 2 ;;
    --train-duration) TRAIN_DUR=$2; shift 2 ;;
    --train-rounds) TRAIN_ROUNDS=$2; shift 2 ;;
    --train-wall-rounds) TRAIN_WALL_ROUNDS=$2; shift 2 ;;
    --train-rps) TRAIN_RPS=$2; shift 2 ;;
    --skip-train-workers2) SKIP_TRAIN_W2=1; shift ;;
    --skip-predict) SKIP_PREDICT=1; shift ;;
    --skip-swap) SKIP_SWAP=1; shift ;;
    --skip-training) SKIP_TRAINING=1; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --skip-go) SKIP_GO=1; shift ;;
    --skip-majors) SKIP_MAJORS=1; shift ;;
    --skip-pipeline) SKIP_PIPELINE=1; shift ;;
    --skip-replicas) SKIP_REPLICAS=1; shift ;;
    --replica-rollbacks) REPLICA_ROLLBACKS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --deadline) DEADLINE=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ $DUR =~ ^[0-9]+s$ && $SWAP_DUR =~ ^[0-9]+s$ && $TRAIN_DUR =~ ^[0-9]+s$ ]] ||
  die "--duration, --swap-duration and --train-duration are whole seconds, e.g. 5s"
[[ $CONC =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ && $SWAP_ROUNDS =~ ^[1-9][0-9]*$ && $TRAIN_ROUNDS =~ ^[1-9][0-9]*$ && $TRAIN_WALL_ROUNDS =~ ^[1-9][0-9]*$ ]] ||
  die "--concurrency, --rounds, --swap-rounds, --train-rounds and --train-wall-rounds are positive integers"
[[ -z $TRAIN_RPS || $TRAIN_RPS =~ ^[1-9][0-9]*$ ]] || die "--train-rps is a positive integer"
[[ $REPLICA_ROLLBACKS =~ ^[1-9][0-9]*$ ]] || die "--replica-rollbacks is a positive integer"
if [ -n "$ONLY" ]; then
  SKIP_PREDICT=1 SKIP_SWAP=1 SKIP_TRAINING=1 SKIP_GO=1 SKIP_PIPELINE=1 SKIP_MAJORS=1 SKIP_REPLICAS=1
  for sec in ${ONLY//,/ }; do
    case $sec in
      predict) SKIP_PREDICT=0 ;;
      swap) SKIP_SWAP=0 ;;
      training) SKIP_TRAINING=0 ;;
      go) SKIP_GO=0 ;;
      majors) SKIP_MAJORS=0 ;;
      pipeline) SKIP_PIPELINE=0 ;;
      replicas) SKIP_REPLICAS=0 ;;
      *) die "--only: unknown section $sec; want predict, swap, training, go, pipeline, majors, replicas" ;;
    esac
  done
fi

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ---------------------------------------------------------------- tools
GHZ=$ROOT/.tools/bin/ghz
[ -x "$GHZ" ] || GHZ=$(command -v ghz || true)
[ -n "$GHZ" ] || die "ghz not found: run scripts/install-tools.sh --bench (or make bench)"
if [ -z "${ONNXRUNTIME_LIB:-}" ]; then
  ONNXRUNTIME_LIB=$(scripts/install-onnxruntime.sh | tail -n 1)
fi
export ONNXRUNTIME_LIB
if [ ! -x "$BIN" ]; then
  log "building $BIN"
  go build -o "$BIN" ./cmd/recommendation-api
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
REPORT="python3 $ROOT/scripts/bench/report.py"

# ---------------------------------------------------------------- cleanup and watchdog
TMP=$(mktemp -d "${TMPDIR:-/tmp}/reco-bench.XXXXXX")
RES=$TMP/results
mkdir -p "$RES" "$TMP/data"
SERVER_PID="" SWAP_PID="" WATCH_PID="" WATCHDOG_PID="" CHILD=""

# run timeout N CMD...: runs the command as a child and waits for it, so
# that a signal (the watchdog's TERM, Ctrl-C) interrupts the wait at once and
# cleanup can TERM the child. Commands start with timeout, which runs them in
# its own process group and passes a TERM on to that whole group (so a
# /usr/bin/time inside it takes its measured command down with it).
run() {
  "$@" &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=""
  return "$rc"
}

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$CHILD" ]; then kill -TERM "$CHILD" 2>/dev/null || true; wait "$CHILD" 2>/dev/null || true; fi
  if [ -n "$SWAP_PID" ]; then kill "$SWAP_PID" 2>/dev/null || true; wait "$SWAP_PID" 2>/dev/null || true; fi
  if [ -n "$WATCH_PID" ]; then kill "$WATCH_PID" 2>/dev/null || true; wait "$WATCH_PID" 2>/dev/null || true; fi
  stop_server
  if [ -n "$WATCHDOG_PID" ]; then kill "$WATCHDOG_PID" 2>/dev/null || true; wait "$WATCHDOG_PID" 2>/dev/null || true; fi
  if [ "$KEEP" = 1 ]; then log "raw results kept in $RES"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
# The watchdog sends TERM to this script; the trap stops the server.
( trap 'kill "$s" 2>/dev/null; exit 0' TERM
  sleep "$DEADLINE" & s=$!
  wait "$s" && { echo "[bench] deadline of ${DEADLINE}s reached; stopping" >&2; kill -TERM $$; } ) &
WATCHDOG_PID=$!

meta() { $REPORT meta "$RES" "$@"; }
meta date="$(date -u +%Y-%m-%dT%H:%MZ)" host="$(hostname)" nproc="$(nproc)" \
  cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
  load_before="$(cut -d' ' -f1-3 /proc/loadavg)" clk_tck="$(getconf CLK_TCK)" \
  commit="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')" \
  go="$(go env GOVERSION)" ghz="$(go version -m "$GHZ" 2>/dev/null | awk '$1=="mod"{print $3; exit}')" \
  ort="$(basename "$ONNXRUNTIME_LIB")" \
  concurrency="$CONC" duration="$DUR" rounds="$ROUNDS" swap_duration="$SWAP_DUR" swap_rounds="$SWAP_ROUNDS" \
  train_duration="$TRAIN_DUR" train_rounds="$TRAIN_ROUNDS"

# ---------------------------------------------------------------- server
GRPC="" HTTP=""
# start_server [NAME [EXTRA SERVE ARGS...]]: a fresh server with its own data
# directory $TMP/NAME (default "server"); sets SERVER_PID, GRPC and HTTP.
start_server() {
  local dir=$TMP/${1:-server}
  [ $# -gt 0 ] && shift
  mkdir -p "$dir"
  "$BIN" serve --insecure-no-auth --log-format text --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --data-dir "$dir/data" \
    --onnxruntime-lib "$ONNXRUNTIME_LIB" "$@" >"$dir/log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 150); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/log" >&2; die "server exited at start"; }
    local line
    line=$(grep -m1 'msg=listening' "$dir/log" || true)
    if [ -n "$line" ]; then
      GRPC=$(sed -n 's/.* grpc=\([^ ]*\).*/\1/p' <<<"$line")
      HTTP=$(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<<"$line")
      if curl -fsS "http://$HTTP/readyz" >/dev/null 2>&1; then
        log "server pid $SERVER_PID ready: gRPC $GRPC, REST $HTTP${*:+ ($*)}"
        return
      fi
    fi
    sleep 0.2
  done
  cat "$dir/log" >&2
  die "server not ready after 30s"
}

# CPU time (ticks) the server process has used so far: utime + stime.
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }

# ghz_run NAME GROUP ROUND ROWS CALL DATAFILE DURATION
ghz_run() {
  local name=$1 group=$2 round=$3 rows=$4 call=$5 data=$6 dur=$7 t0 t1 rc=0
  local timecmd=()  # ghz's own CPU time, when /usr/bin/time is there
  [ -x /usr/bin/time ] && timecmd=(/usr/bin/time -f '%U %S' -o "$RES/$name.client")
  t0=$(server_ticks)
  run timeout $(( ${dur%s} + 60 )) "${timecmd[@]}" "$GHZ" --insecure --call "$call" -D "$data" \
    -c "$CONC" ${LOAD_RPS:+--rps "$LOAD_RPS"} -z "$dur" --duration-stop wait -O json -o "$RES/$name.json" "$GRPC" || rc=$?
  t1=$(server_ticks)
  [ "$rc" = 0 ] || log "ghz $name exited $rc"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$group" "$round" "$rows" "$((t1 - t0))" >>"$RES/runs.tsv"
  log "$name: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%d calls, %.0f rps, codes %s" % (r["count"], r["rps"], r["statusCodeDistribution"]))' "$RES/$name.json" 2>/dev/null || echo 'no report')"
}

NOOP=grpc.health.v1.Health/Check
PREDICT=recommendation.v1.RecommendationService/Predict

# ---------------------------------------------------------------- 1-3. Predict vs no-op
bench_predict() {
  log "warm-up (discarded)"
  run timeout 60 "$GHZ" --insecure --call "$NOOP" -D "$TMP/data/noop.json" -c "$CONC" -z 2s -O summary "$GRPC" >/dev/null
  run timeout 60 "$GHZ" --insecure --call "$PREDICT" -D "$TMP/data/predict-1.json" -c "$CONC" -z 2s -O summary "$GRPC" >/dev/null
  # Odd rounds run no-op → 1 → 100 → 1000 rows, even rounds the reverse, so
  # that a load trend on the machine does not favour one kind of call; the
  # no-op and the single-row Predict are neighbours in every round.
  local r n order
  for r in $(seq "$ROUNDS"); do
    order="0 1 100 1000"
    [ $((r % 2)) = 0 ] && order="1000 100 1 0"
    for n in $order; do
      if [ "$n" = 0 ]; then
        ghz_run "noop-r$r" noop "$r" 0 "$NOOP" "$TMP/data/noop.json" "$DUR"
      else
        ghz_run "predict-$n-r$r" "predict-$n" "$r" "$n" "$PREDICT" "$TMP/data/predict-$n.json" "$DUR"
      fi
    done
  done
}

# ---------------------------------------------------------------- 4. swap latency
# Two extra versions, trained small: SWAP_VERSION for (b) warm swaps
# (activate it, roll back, …: the release flow keeps the previous version's
# session warm, so after the first activation each swap reads and checks the
# bytes from bbolt, swaps the pointer and records the move) and COLD_VERSION
# for (c) cold swaps (activate base → SWAP → COLD → base …: each target is not
# loaded, so every swap also creates an ONNX Runtime session and replays the
# golden rows). Both are major 1 (the default major, which the 12-value
# Predict rows, GET /v1/models:active and POST /v1/models:rollback use) and
# above the embedded default v1.1.0, which a fresh server registers.
SWAP_VERSION=v1.2.0
COLD_VERSION=v1.3.0
BASE_VERSION=""
prepare_swap_models() {
  local d=$TMP/swapmodel v seed=11
  mkdir -p "$d"
  log "training $SWAP_VERSION and $COLD_VERSION for the swap test (5000 samples, 3 epochs)"
  run timeout 180 "$BIN" generate-data --major 1 --samples 5000 --output "$d/data.npz" --seed 11 >"$d/log" 2>&1 ||
    { tail -n 20 "$d/log" >&2; return 1; }
  for v in "$SWAP_VERSION" "$COLD_VERSION"; do
    seed=$((seed + 1))
    run timeout 180 "$BIN" train --data "$d/data.npz" --output "$d/$v" --version "$v" \
      --epochs 3 --eval-samples 2000 --seed "$seed" >>"$d/log" 2>&1 || { tail -n 20 "$d/log" >&2; return 1; }
    $REPORT register-body "$d/$v/predictor_$v.onnx" "$d/$v/manifest.json" "$d/register-$v.json"
  done
}

register_swap_models() {
  local code v
  for v in "$SWAP_VERSION" "$COLD_VERSION"; do
    code=$(curl -sS -o "$TMP/register.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
      --data-binary @"$TMP/swapmodel/register-$v.json" "http://$HTTP/v1/models")
    [ "$code" = 200 ] || { log "register $v: HTTP $code"; cat "$TMP/register.out" >&2; echo >&2; return 1; }
    log "registered $v"
  done
}

active_version() {
  curl -fsS "http://$HTTP/v1/models:active" | python3 -c 'import json,sys; print(json.load(sys.stdin)["model"]["version"])'
}

# swap_loop FILE MODE: one swap per second until $TMP/stop-swaps exists; one
# line per swap in FILE: action http_code seconds start_ns. MODE warm: activate
# SWAP_VERSION, roll back, activate, …; MODE cold: activate the next of
# BASE_VERSION → SWAP_VERSION → COLD_VERSION → BASE_VERSION ….
swap_loop() {
  local file=$1 mode=$2 next action url out now cur start
  cur=$(active_version)
  if [ "$mode" = warm ]; then
    if [ "$cur" = "$SWAP_VERSION" ]; then action=rollback; else action=activate; fi
  fi
  next=$(( $(date +%s%N) / 1000000 + 500 ))
  while [ ! -e "$TMP/stop-swaps" ]; do
    now=$(( $(date +%s%N) / 1000000 ))
    if [ "$now" -lt "$next" ]; then sleep "$(printf '0.%03d' $(( next - now > 999 ? 999 : next - now )))"; continue; fi
    next=$(( next + 1000 ))
    if [ "$mode" = cold ]; then
      case $cur in
        "$BASE_VERSION") cur=$SWAP_VERSION ;;
        "$SWAP_VERSION") cur=$COLD_VERSION ;;
        *) cur=$BASE_VERSION ;;
      esac
      action=activate url="/v1/models/$cur:activate"
    elif [ "$action" = activate ]; then
      url="/v1/models/$SWAP_VERSION:activate"
    else
      url="/v1/models:rollback"
    fi
    start=$(date +%s%N)
    out=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' -X POST -H 'Content-Type: application/json' \
      -d '{"reason":"scripts/bench.sh swap latency","actor":"bench"}' --max-time 10 "http://$HTTP$url" 2>/dev/null || echo "000 0")
    echo "$action $out $start" >>"$file"
    if [ "$mode" = warm ]; then
      if [ "$action" = activate ]; then action=rollback; else action=activate; fi
    fi
  done
}

# swap_run NAME GROUP ROUND MODE: single-row Predict load while swap_loop runs.
swap_run() {
  local name=$1 group=$2 round=$3 mode=$4
  rm -f "$TMP/stop-swaps"
  swap_loop "$RES/swaps-$mode-r$round.tsv" "$mode" &
  SWAP_PID=$!
  ghz_run "$name" "$group" "$round" 1 "$PREDICT" "$TMP/data/predict-1.json" "$SWAP_DUR"
  touch "$TMP/stop-swaps"
  wait "$SWAP_PID" || true
  SWAP_PID=""
  log "$mode swaps in round $round: $(wc -l <"$RES/swaps-$mode-r$round.tsv") ($(awk '$2!=200' "$RES/swaps-$mode-r$round.tsv" | wc -l) not 200)"
}

bench_swap() {
  # Odd rounds run (a) (b) (c), even rounds (c) (b) (a): see bench_predict.
  local r k
  for r in $(seq "$SWAP_ROUNDS"); do
    for k in $([ $((r % 2)) = 1 ] && echo a b c || echo c b a); do
      case $k in
        a) ghz_run "swap-a-r$r" swap-a "$r" 1 "$PREDICT" "$TMP/data/predict-1.json" "$SWAP_DUR" ;;
        b) swap_run "swap-b-r$r" swap-b "$r" warm ;;
        c) swap_run "swap-c-r$r" swap-c "$r" cold ;;
      esac
    done
  done
}

# ---------------------------------------------------------------- 5. training jobs (issue 5)
# Predict p99 while a 100,000-sample training job runs, against p99 with no
# job, on the same server in the same run (goal ≤ 1.5×); the job's wall time
# against the CLI pipeline's on the same data; and the same load on a server
# started with --train-workers 2, to show why the default is 1.
TRAIN_BODY='{"samples":"100000","epochs":30,"seed":"1","bump":"patch","activation_policy":"ACTIVATION_POLICY_NEVER","actor":"bench","reason":"scripts/bench.sh training-job load"}'
JOB_ID="" JOB_STATE=""

# job_start NAME: POST /v1/training-jobs with TRAIN_BODY; sets JOB_ID and
# follows the job's REST WatchJob stream (one JSON event per line, with the
# time of each phase change) into RES/NAME.watch.jsonl in the background.
job_start() {
  local name=$1 code
  code=$(curl -sS -o "$RES/$name.start.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "$TRAIN_BODY" --max-time 10 "http://$HTTP/v1/training-jobs" 2>/dev/null) || code=000
  if [ "$code" != 200 ]; then
    log "start job ($name): HTTP $code: $(head -c 300 "$RES/$name.start.json" 2>/dev/null)"
    return 1
  fi
  JOB_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job"]["id"])' "$RES/$name.start.json")
  curl -sN --max-time 600 "http://$HTTP/v1/training-jobs/$JOB_ID:watch" >"$RES/$name.watch.jsonl" 2>/dev/null &
  WATCH_PID=$!
}

# job_wait NAME ID STATES TIMEOUT: polls GET /v1/training-jobs/ID every 0.1 s
# until its state matches the regex STATES (then the answer is RES/NAME.job.json);
# sets JOB_STATE; returns 1 after TIMEOUT seconds.
job_wait() {
  local name=$1 id=$2 want=$3 end=$(( $(date +%s) + $4 ))
  while :; do
    curl -sS --max-time 5 "http://$HTTP/v1/training-jobs/$id" >"$TMP/job.json" 2>/dev/null || true
    JOB_STATE=$(grep -o '"state": *"JOB_STATE_[A-Z]*"' "$TMP/job.json" | head -n 1 | grep -o 'JOB_STATE_[A-Z]*' || true)
    if [[ $JOB_STATE =~ ^($want)$ ]]; then cp "$TMP/job.json" "$RES/$name.job.json"; return 0; fi
    if [ "$(date +%s)" -ge "$end" ]; then log "job $id ($name): still ${JOB_STATE:-unknown} after $4 s"; return 1; fi
    sleep 0.1
  done
}

# job_finish NAME ID: waits for the job's final state and the end of its
# watch stream, and records it in RES/jobs.tsv.
job_finish() {
  local name=$1 id=$2
  job_wait "$name" "$id" 'JOB_STATE_SUCCEEDED|JOB_STATE_FAILED|JOB_STATE_CANCELLED' 300 || true
  if [ -n "$WATCH_PID" ]; then
    for _ in $(seq 30); do kill -0 "$WATCH_PID" 2>/dev/null || break; sleep 0.1; done
    kill "$WATCH_PID" 2>/dev/null || true
    wait "$WATCH_PID" 2>/dev/null || true
    WATCH_PID=""
  fi
  printf '%s\t%s\n' "$name" "$id" >>"$RES/jobs.tsv"
  log "job $id ($name): ${JOB_STATE:-unknown}, $(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["job"]
print("version %s, %s epochs, %s → %s" % (j["version"], j["progress"]["epoch"], j.get("startedAt"), j.get("finishedAt")))' \
    "$RES/$name.job.json" 2>/dev/null || echo 'no record')"
}

# train_load_run NAME GROUP ROUND: starts a job, waits until it is RUNNING,
# runs single-row Predict load for TRAIN_DUR, then waits for the job to end.
# RES/NAME.atend.json is the job as the load ended (still RUNNING or not).
train_load_run() {
  local name=$1 group=$2 round=$3 id
  job_start "$name" || { meta "${name}_error=POST /v1/training-jobs failed"; return 1; }
  id=$JOB_ID
  job_wait "$name" "$id" 'JOB_STATE_RUNNING|JOB_STATE_SUCCEEDED|JOB_STATE_FAILED|JOB_STATE_CANCELLED' 60 || true
  [ "$JOB_STATE" = JOB_STATE_RUNNING ] || log "job $id ($name) is ${JOB_STATE:-unknown}, not RUNNING, as the load starts"
  ghz_run "$name" "$group" "$round" 1 "$PREDICT" "$TMP/data/predict-1.json" "$TRAIN_DUR"
  curl -sS --max-time 5 "http://$HTTP/v1/training-jobs/$id" >"$RES/$name.atend.json" 2>/dev/null || true
  job_finish "$name" "$id"
}

# train_rounds PREFIX ROUNDS: (a) no job, (b) a job running; odd rounds
# (a) (b), even rounds (b) (a).
train_rounds() {
  local p=$1 r k
  run timeout 60 "$GHZ" --insecure --call "$PREDICT" -D "$TMP/data/predict-1.json" -c "$CONC" -z 2s -O summary "$GRPC" >/dev/null
  LOAD_RPS=$TRAIN_RPS
  for r in $(seq "$2"); do
    for k in $([ $((r % 2)) = 1 ] && echo a b || echo b a); do
      case $k in
        a) ghz_run "$p-a-r$r" "$p-a" "$r" 1 "$PREDICT" "$TMP/data/predict-1.json" "$TRAIN_DUR" ;;
        b) train_load_run "$p-b-r$r" "$p-b" "$r" || true ;;
      esac
    done
  done
  LOAD_RPS=""
}

# train_cli ROUND VERSION: the CLI pipeline on the data the job simulated
# (the features of VERSION's major: a job trains the newest served major
# unless told otherwise), each step under /usr/bin/time -v:
# RES/train-cli-rROUND-{generate,train,validate}.time.
train_cli() {
  local r=$1 v=$2 d=$TMP/train-cli-r$1 step args major
  major=${v#v} major=${major%%.*}
  mkdir -p "$d"
  local gen="generate-data --samples 100000 --output $d/data.npz --seed 1 --major $major"
  local train="train --data $d/data.npz --output $d/models/ --version $v --seed 1 --epochs 30"
  local val="validate --model $d/models/predictor.onnx"
  meta train_cli_cmds="$(printf 'bin/recommendation-api %s\n' "$gen" "$train" "$val" | sed "s|$d|\$DIR|g; s|$v|\$VERSION|g")"
  for step in generate train validate; do
    case $step in generate) args=$gen ;; train) args=$train ;; validate) args=$val ;; esac
    log "CLI pipeline on the job's data, round $r: $step"
    # shellcheck disable=SC2086
    if ! run timeout 180 /usr/bin/time -v -o "$RES/train-cli-r$r-$step.time" "$BIN" $args >"$d/$step.log" 2>&1; then
      log "CLI step $step failed:"; tail -n 15 "$d/$step.log" >&2
      meta "train_cli_error_r${r}_$step=$(tail -n 1 "$d/$step.log")"
      [ "$step" = validate ] || return 0
    fi
  done
  cp "$d/models/manifest.json" "$RES/train-cli-r$r.manifest.json" 2>/dev/null || true
  rm -rf "$d"
}

bench_training_job() {
  meta train_body="$TRAIN_BODY" train_wall_rounds="$TRAIN_WALL_ROUNDS" train_rps="$TRAIN_RPS"
  # (a)/(b) rounds on the server every other section uses (--train-workers 1).
  train_rounds train "$TRAIN_ROUNDS"
  # (c) a job with no load, for its wall time and CPU (the server is idle
  # apart from the job and the 0.1 s polling), then the CLI pipeline on the
  # same data with the server idle; as many pairs as --train-wall-rounds. The
  # CLI trains the job's version, so the model bytes (whose header names the
  # version) can be compared.
  local r t0 t1 v
  for r in $(seq "$TRAIN_WALL_ROUNDS"); do
    log "job with no load, for its wall time (round $r)"
    v=""
    t0=$(server_ticks)
    if job_start "train-c-r$r"; then
      job_finish "train-c-r$r" "$JOB_ID"
      t1=$(server_ticks)
      meta "train_c_r${r}_server_cpu_ticks=$((t1 - t0))"
      v=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job"]["version"])' "$RES/train-c-r$r.job.json" 2>/dev/null || true)
      [ -z "$v" ] || curl -sS --max-time 10 "http://$HTTP/v1/models/$v" >"$RES/train-c-r$r.model.json" 2>/dev/null || true
    fi
    if [ -z "$v" ]; then
      meta train_cli_skipped="the no-load job did not finish with a version"
    elif [ ! -x /usr/bin/time ]; then
      meta train_cli_skipped="/usr/bin/time missing"
    else
      train_cli "$r" "$v"
    fi
  done
  # (a)/(b) once more on a server that gives a job 2 goroutines.
  if [ "$SKIP_TRAIN_W2" = 0 ]; then
    stop_server
    start_server server-w2 --train-workers 2
    meta train_w2_rounds=1
    train_rounds train2 1
  else
    meta train_w2_skipped="--skip-train-workers2"
  fi
}

# ---------------------------------------------------------------- 8. two majors side by side
# Predict of major 1 (12 values) and major 2 (its wider rows) at random from
# --concurrency callers while each major is rolled back and re-activated
# every second, against the same load without swaps, alternating rounds on
# one server (scripts/bench/majors). Its own markdown goes after the report.
bench_majors() {
  start_server majors
  local cmd="go run ./scripts/bench/majors -grpc $GRPC -duration $SWAP_DUR -rounds $SWAP_ROUNDS -concurrency $CONC"
  log "two majors: $cmd"
  {
    echo
    echo "## Two majors side by side, each rolled back and re-activated every second"
    echo
    echo "\`go run ./scripts/bench/majors -duration $SWAP_DUR -rounds $SWAP_ROUNDS -concurrency $CONC\` against a fresh server."
    echo
    echo "| round | load | calls | failed | wrong major | p50 | p99 |"
    echo "|---|---|---|---|---|---|---|"
  } >"$RES/majors.md"
  local rc=0
  run timeout 600 go run ./scripts/bench/majors -grpc "$GRPC" -duration "$SWAP_DUR" -rounds "$SWAP_ROUNDS" \
    -concurrency "$CONC" >>"$RES/majors.md" 2>"$RES/majors.err" || rc=$?
  if [ "$rc" != 0 ]; then log "majors exited $rc:"; tail -n 20 "$RES/majors.err" >&2; fi
  stop_server
}

# ---------------------------------------------------------------- 6. Go micro-benchmarks
bench_go() {
  local cmd="go test -run '^\$' -bench 'SessionRun|ForwardGo|AcquireRelease' -benchtime $BENCHTIME -count $GOCOUNT ./internal/serving/"
  meta gobench_cmd="$cmd"
  log "go micro-benchmarks: $cmd"
  local rc=0
  run timeout 300 go test -run '^$' -bench 'SessionRun|ForwardGo|AcquireRelease' -benchtime "$BENCHTIME" \
    -count "$GOCOUNT" -timeout 4m ./internal/serving/ >"$RES/gobench.txt" 2>&1 || rc=$?
  meta gobench_rc="$rc"
  if [ "$rc" != 0 ]; then log "go test exited $rc:"; tail -n 20 "$RES/gobench.txt" >&2; fi
  # The rollback target comes from an index: its cost against the history's length.
  log "registry benchmarks: rollback cost with 100 to 100,000 history events"
  {
    echo
    echo "## Rollback cost against the history's length"
    echo
    echo "\`go test -run '^\$' -bench 'RollbackTarget|PreviousActive' -benchtime 200x ./internal/registry/\`: a rollback"
    echo "(find the target, record it, re-activate; each commit fsyncs) and the target lookup alone."
    echo
    echo '```'
    go test -run '^$' -bench 'RollbackTarget|PreviousActive' -benchtime 200x -benchmem ./internal/registry/ 2>&1 | grep -E '^Benchmark'
    echo '```'
  } >"$RES/registry.md" || log "registry benchmarks failed"
}

# ---------------------------------------------------------------- 7. pipeline cost
bench_pipeline() {
  if [ ! -x /usr/bin/time ]; then
    meta pipeline_skipped="/usr/bin/time missing and apt-get install time failed"
    return
  fi
  local d=$TMP/pipeline
  mkdir -p "$d"
  local gen="generate-data --samples $PIPELINE_SAMPLES --output $d/training_data.npz --seed 42"
  local train="train --data $d/training_data.npz --output $d/models/"
  local val="validate --model $d/models/predictor.onnx"
  meta pipeline_cmds="$(printf 'bin/recommendation-api %s\n' "$gen" "$train" "$val" | sed "s|$d|\$DIR|g")"
  local step args
  for step in generate train validate; do
    case $step in generate) args=$gen ;; train) args=$train ;; validate) args=$val ;; esac
    log "pipeline: $step"
    # shellcheck disable=SC2086
    if ! run timeout 180 /usr/bin/time -v -o "$RES/pipeline-$step.time" "$BIN" $args >"$d/$step.log" 2>&1; then
      log "pipeline step $step failed:"; tail -n 15 "$d/$step.log" >&2
      meta "pipeline_error_$step=$(tail -n 1 "$d/$step.log")"
      [ "$step" = validate ] || break
    fi
  done
}

# ---------------------------------------------------------------- 8. replicas
# Its markdown table is appended to the report as printed by the benchmark.
bench_replicas() {
  if ! command -v etcd >/dev/null && [ -z "${ETCD_BIN:-}" ]; then
    echo "_Replicas: skipped, no etcd server (apt-get install etcd-server)._" >"$RES/replicas.md"
    return
  fi
  local cmd="RECO_BENCH_ROLLBACKS=$REPLICA_ROLLBACKS go test -run '^\$' -bench ReplicaConvergence -benchtime 1x ./cmd/recommendation-api/"
  log "replicas: $cmd"
  local rc=0
  run timeout 400 env RECO_BENCH_ROLLBACKS="$REPLICA_ROLLBACKS" go test -run '^$' -bench ReplicaConvergence -benchtime 1x \
    -timeout 6m ./cmd/recommendation-api/ >"$RES/replicas.txt" 2>&1 || rc=$?
  {
    echo "## 8. Replicas: convergence after a release (etcd mode)"
    echo
    echo "\`$cmd\` (exit $rc)"
    echo
    grep -E '^(replica convergence|\||Predict calls)' "$RES/replicas.txt" || tail -n 20 "$RES/replicas.txt"
  } >"$RES/replicas.md"
  if [ "$rc" != 0 ]; then log "go test exited $rc:"; tail -n 20 "$RES/replicas.txt" >&2; fi
}

# ---------------------------------------------------------------- run
# /usr/bin/time measures the pipeline steps and ghz's own CPU time.
if [ ! -x /usr/bin/time ]; then
  log "installing /usr/bin/time (Debian package time)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; } ||
    log "apt-get install time failed: no pipeline figures, no client CPU"
fi
$REPORT data "$TMP/data"
skipped() { if [ -n "$ONLY" ]; then echo "--only $ONLY"; else echo "--skip-$1"; fi; }
if [ "$SKIP_SWAP" = 0 ]; then
  prepare_swap_models || { SKIP_SWAP=1; meta swap_skipped="training the second model version failed"; }
else
  meta swap_skipped="$(skipped swap)"
fi
if [ "$SKIP_PREDICT$SKIP_SWAP$SKIP_TRAINING" != 111 ]; then
  start_server
  BASE_VERSION=$(active_version)
  meta model="$BASE_VERSION" swap_version="$SWAP_VERSION" cold_version="$COLD_VERSION"
fi
if [ "$SKIP_PREDICT" = 0 ]; then bench_predict; else meta predict_skipped="$(skipped predict)"; fi
if [ "$SKIP_SWAP" = 0 ]; then
  if register_swap_models; then bench_swap; else meta swap_skipped="registering the swap-test versions failed"; fi
fi
if [ "$SKIP_TRAINING" = 0 ]; then bench_training_job; else meta training_skipped="$(skipped training)"; fi
stop_server
if [ "$SKIP_MAJORS" = 0 ]; then bench_majors; fi
if [ "$SKIP_GO" = 0 ]; then bench_go; else meta gobench_skipped="$(skipped go)"; fi
if [ "$SKIP_PIPELINE" = 0 ]; then bench_pipeline; else meta pipeline_skipped="$(skipped pipeline)"; fi
if [ "$SKIP_REPLICAS" = 0 ]; then bench_replicas; fi
meta load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

$REPORT markdown "$RES" >"$TMP/report.md"
for extra in majors registry; do if [ -f "$RES/$extra.md" ]; then cat "$RES/$extra.md" >>"$TMP/report.md"; fi; done
if [ -f "$RES/replicas.md" ]; then { echo; cat "$RES/replicas.md"; } >>"$TMP/report.md"; fi
if [ -n "$OUT" ]; then cp "$TMP/report.md" "$OUT"; log "report written to $OUT"; fi
cat "$TMP/report.md"
