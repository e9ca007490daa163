#!/usr/bin/env bash
# How much the major-2 result depends on the training seed: the default
# model's data (make-default-model.sh), trained with seeds 1..4 (SEEDS to
# change), each gated by validate --trace on the held-out Bitbrains
# containers. Prints one line per seed and gate. The default model is seed 1.
# Run it as make seed-spread (ONNX Runtime is found as for the other targets).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TRACES=${TRACES:-$ROOT/../shared/data}
J=$(cd "$TRACES/bitbrains-rnd-2013-7" && pwd)
A=$(cd "$TRACES/bitbrains-rnd-2013-8" && pwd)
SEEDS=${SEEDS:-1 2 3 4}
BIN=$ROOT/bin/recommendation-api
(cd "$ROOT" && go build -o "$BIN" ./cmd/recommendation-api)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
"$BIN" generate-data --major 2 --trace "$J" "$A" --trace-history 7d,2d --mix-synthetic 20000 --seed 20261127 --output v2.npz >/dev/null
for s in $SEEDS; do
	"$BIN" train --data v2.npz --output "m$s" --version v2.0.0 --seed "$s" --learning-rate 0.01 --cpu-throttle-share --cpu-overrun-price 10 --separate-cpu >/dev/null
	for h in 7d 2d; do
		out=$("$BIN" validate --model "m$s/predictor.onnx" --baseline-gates=false --trace "$J" "$A" --history "$h" 2>&1 || true)
		echo "$out" | { grep -E '^  (PASS|FAIL|MISS|info)  real-' || echo "  $out" | tail -n 1; } | sed "s/^/seed $s, $h: /"
	done
done
