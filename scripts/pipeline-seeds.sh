#!/usr/bin/env bash
# The four-step synthetic pipeline of the README (generate-data, train,
# validate) with several seeds (SEEDS, default 1 3 7 42) for each major
# (MAJORS, default 2 1), each with the defaults of its major: prints the
# baseline gates validate enforces (oom-rate, memory-slack at VPA's OOM
# rate) and the advisory cpu-slack, one line per seed and gate, and exits
# 0 whatever they say. Run it as make pipeline-seeds.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SEEDS=${SEEDS:-1 3 7 42}
MAJORS=${MAJORS:-2 1}
SAMPLES=${SAMPLES:-100000}
BIN=$ROOT/bin/recommendation-api
(cd "$ROOT" && go build -o "$BIN" ./cmd/recommendation-api)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
for major in $MAJORS; do
	for s in $SEEDS; do
		"$BIN" generate-data --major "$major" --samples "$SAMPLES" --seed "$s" --output "d$major-$s.npz" >/dev/null
		"$BIN" train --data "d$major-$s.npz" --output "m$major-$s" --seed "$s" >/dev/null
		out=$("$BIN" validate --model "m$major-$s/predictor.onnx" 2>&1 || true)
		echo "$out" | grep -E '^  (PASS|FAIL|MISS|info)  (oom-rate|memory-slack|mem-slack-vpa-risk|cpu-slack) ' | sed "s/^ */major $major, seed $s: /"
	done
done
