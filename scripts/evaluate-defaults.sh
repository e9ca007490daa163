#!/usr/bin/env bash
# Regenerates docs/evaluation/: the embedded default models v2.0.0 and
# v1.1.0 against VPA (both deployments) and KRR on the held-out containers of
# the July and August Bitbrains VMs, at 7- and 2-day histories (JSON and
# slack-vs-risk plots), and the baselines alone on every container for the
# comparison with an independent VPA implementation. docs/evaluation.md
# quotes these files. Run it as make evaluate-defaults.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TRACES=${TRACES:-../shared/data}
J=$TRACES/bitbrains-rnd-2013-7
A=$TRACES/bitbrains-rnd-2013-8
OUT=docs/evaluation
BIN=bin/recommendation-api
go build -o "$BIN" ./cmd/recommendation-api
mkdir -p "$OUT"
for set in july:$J august:$A; do
	name=${set%%:*} dir=${set#*:}
	"$BIN" evaluate --model internal/defaultmodel/v2/predictor.onnx --trace "$dir" --out "$OUT/$name-heldout.json" --plot "$OUT/$name-heldout.png"
	"$BIN" evaluate --model internal/defaultmodel/v1/predictor.onnx --trace "$dir" --out "$OUT/$name-v1-heldout.json" --plot "$OUT/$name-v1-heldout.png"
	"$BIN" evaluate --no-model --containers all --history 7d --trace "$dir" --out "$OUT/$name-baselines-all.json"
	"$BIN" evaluate --no-model --containers all --history 7d --vpa-count-rows --trace "$dir" --out "$OUT/$name-baselines-all-rows.json"
done
