#!/usr/bin/env bash
# Regenerates the embedded default model with the project's own pipeline and
# fixed seeds. The ONNX bytes come out identical on every run; the manifest's
# created_at comes from SOURCE_DATE_EPOCH (fixed below) and its recorded
# training duration is the real one.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/bin/recommendation-api-bootstrap
(cd "$ROOT" && go build -tags nodefaultmodel -o "$BIN" ./cmd/recommendation-api)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1793491200} # 2026-11-01T00:00:00Z
cd "$WORK" # relative paths, so the manifest records no temporary directory
"$BIN" generate-data --major 1 --samples 100000 --seed 20261127 --output training_data.npz
"$BIN" train --data training_data.npz --output models --version v1.0.0 --seed 1
# Integrity gates are enforced. The baseline gates are printed but not
# enforced: against the VPA recommender as it computes its bounds, this
# major-1 model does not win on synthetic held-out data (OOM rate 0.066 vs
# VPA's 0.061 at about the same memory slack; docs/model.md), and the embedded default must
# still be reproducible. Model versions that do win are registered on top.
"$BIN" validate --model models/predictor.onnx --baseline-gates=false
cp "$WORK/models/predictor.onnx" "$ROOT/internal/defaultmodel/predictor.onnx"
cp "$WORK/models/manifest.json" "$ROOT/internal/defaultmodel/manifest.json"
echo "default model: $(sha256sum "$ROOT/internal/defaultmodel/predictor.onnx")"
