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
#   5.   Go micro-benchmarks of internal/serving (ONNX Runtime vs pure Go).
#   6.   Wall time and peak RSS of generate-data, train, validate at 100,000
#        samples (after the server is stopped).
#   TODO (issue 5): Predict p99 while a training job runs — see bench_training_job.
#
# Usage: scripts/bench.sh [--out FILE] [--concurrency 8] [--duration 3s]
#          [--rounds 5] [--swap-duration 6s] [--swap-rounds 5]
#          [--benchtime 500ms] [--skip-swap] [--skip-go] [--skip-pipeline]
#          [--keep] [--deadline SECONDS]
# Prints the markdown report, and writes it to FILE with --out.
# Bounded: a watchdog stops everything after --deadline seconds (default 480);
# the server it starts is always stopped and the temp directory removed
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
SKIP_SWAP=0 SKIP_GO=0 SKIP_PIPELINE=0 KEEP=0
DEADLINE=480
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
    --skip-swap) SKIP_SWAP=1; shift ;;
    --skip-go) SKIP_GO=1; shift ;;
    --skip-pipeline) SKIP_PIPELINE=1; shift ;;
    --keep) KEEP=1; shift ;;
    --deadline) DEADLINE=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ $DUR =~ ^[0-9]+s$ && $SWAP_DUR =~ ^[0-9]+s$ ]] || die "--duration and --swap-duration are whole seconds, e.g. 5s"
[[ $CONC =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ && $SWAP_ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--concurrency, --rounds and --swap-rounds are positive integers"

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
SERVER_PID="" SWAP_PID="" WATCHDOG_PID="" CHILD=""

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
  concurrency="$CONC" duration="$DUR" rounds="$ROUNDS" swap_duration="$SWAP_DUR" swap_rounds="$SWAP_ROUNDS"

# ---------------------------------------------------------------- server
GRPC="" HTTP=""
start_server() {
  local dir=$TMP/server
  mkdir -p "$dir"
  "$BIN" serve --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --data-dir "$dir/data" \
    --onnxruntime-lib "$ONNXRUNTIME_LIB" >"$dir/log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 150); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/log" >&2; die "server exited at start"; }
    local line
    line=$(grep -m1 'msg=listening' "$dir/log" || true)
    if [ -n "$line" ]; then
      GRPC=$(sed -n 's/.* grpc=\([^ ]*\).*/\1/p' <<<"$line")
      HTTP=$(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<<"$line")
      if curl -fsS "http://$HTTP/readyz" >/dev/null 2>&1; then
        log "server pid $SERVER_PID ready: gRPC $GRPC, REST $HTTP"
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
    -c "$CONC" -z "$dur" --duration-stop wait -O json -o "$RES/$name.json" "$GRPC" || rc=$?
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
# golden rows).
SWAP_VERSION=v1.1.0
COLD_VERSION=v1.2.0
BASE_VERSION=""
prepare_swap_models() {
  local d=$TMP/swapmodel v seed=11
  mkdir -p "$d"
  log "training $SWAP_VERSION and $COLD_VERSION for the swap test (5000 samples, 3 epochs)"
  run timeout 180 "$BIN" generate-data --samples 5000 --output "$d/data.npz" --seed 11 >"$d/log" 2>&1 ||
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

# ---------------------------------------------------------------- TODO (issue 5)
# bench_training_job: Predict p99 while a 100,000-sample training job runs,
# against p99 with no job, same run (goal ≤ 1.5×), and the job's wall time
# against the CLI pipeline's (section 6). Not written yet: the TrainingService
# (POST /v1/training-jobs, GET /v1/training-jobs/{id}) is being built. Sketch:
#   ghz_run train-a-rN train-a N 1 "$PREDICT" predict-1.json "$SWAP_DUR"
#   start a job (samples 100000, activation never), then while it runs:
#   ghz_run train-b-rN train-b N 1 ...; poll GET /v1/training-jobs/{id} to its
#   end for the wall time; add a section in scripts/bench/report.py
#   (section_training_todo) that reads these runs.
bench_training_job() {
  meta training_skipped="TODO (issue 5): training API not available yet"
}

# ---------------------------------------------------------------- 5. Go micro-benchmarks
bench_go() {
  local cmd="go test -run '^\$' -bench 'SessionRun|ForwardGo|AcquireRelease' -benchtime $BENCHTIME -count $GOCOUNT ./internal/serving/"
  meta gobench_cmd="$cmd"
  log "go micro-benchmarks: $cmd"
  local rc=0
  run timeout 300 go test -run '^$' -bench 'SessionRun|ForwardGo|AcquireRelease' -benchtime "$BENCHTIME" \
    -count "$GOCOUNT" -timeout 4m ./internal/serving/ >"$RES/gobench.txt" 2>&1 || rc=$?
  meta gobench_rc="$rc"
  if [ "$rc" != 0 ]; then log "go test exited $rc:"; tail -n 20 "$RES/gobench.txt" >&2; fi
}

# ---------------------------------------------------------------- 6. pipeline cost
bench_pipeline() {
  if [ ! -x /usr/bin/time ]; then
    meta pipeline_skipped="/usr/bin/time missing and apt-get install time failed"
    return
  fi
  local d=$TMP/pipeline
  mkdir -p "$d"
  local gen="generate-data --samples $PIPELINE_SAMPLES --output $d/training_data.npz --seed 42"
  local train="train --data $d/training_data.npz --output $d/models/ --version v1.0.0"
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

# ---------------------------------------------------------------- run
# /usr/bin/time measures the pipeline steps and ghz's own CPU time.
if [ ! -x /usr/bin/time ]; then
  log "installing /usr/bin/time (Debian package time)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; } ||
    log "apt-get install time failed: no pipeline figures, no client CPU"
fi
$REPORT data "$TMP/data"
if [ "$SKIP_SWAP" = 0 ]; then
  prepare_swap_models || { SKIP_SWAP=1; meta swap_skipped="training the second model version failed"; }
else
  meta swap_skipped="--skip-swap"
fi
start_server
BASE_VERSION=$(active_version)
meta model="$BASE_VERSION" swap_version="$SWAP_VERSION" cold_version="$COLD_VERSION"
bench_predict
if [ "$SKIP_SWAP" = 0 ]; then
  if register_swap_models; then bench_swap; else meta swap_skipped="registering the swap-test versions failed"; fi
fi
bench_training_job
stop_server
if [ "$SKIP_GO" = 0 ]; then bench_go; else meta gobench_skipped="--skip-go"; fi
if [ "$SKIP_PIPELINE" = 0 ]; then bench_pipeline; else meta pipeline_skipped="--skip-pipeline"; fi
meta load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

$REPORT markdown "$RES" >"$TMP/report.md"
if [ -n "$OUT" ]; then cp "$TMP/report.md" "$OUT"; log "report written to $OUT"; fi
cat "$TMP/report.md"
