#!/usr/bin/env bash
# Regenerates the embedded default models, one per major, with the project's
# own pipeline and fixed seeds:
#   v1.1.0 (major 1, 12 features, 48 h history) and
#   v2.0.0 (major 2, 16 features, 7-day history),
# each trained on the training half of the Bitbrains VMs (generate-data
# --trace never cuts rows from the containers held out for evaluation) mixed
# with 20,000 simulated containers. The ONNX bytes come out identical on
# every run; the manifests' created_at comes from SOURCE_DATE_EPOCH (fixed
# below) and their recorded training duration is the real one.
#
# The traces are read from $TRACES/bitbrains-rnd-2013-7 and
# $TRACES/bitbrains-rnd-2013-8; TRACES defaults to ../shared/data next to the
# repository.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TRACES=${TRACES:-$ROOT/../shared/data}
J=$TRACES/bitbrains-rnd-2013-7
A=$TRACES/bitbrains-rnd-2013-8
for d in "$J" "$A"; do
	if [ ! -d "$d" ]; then
		echo "make-default-model: trace directory $d not found: the default models are trained on the Bitbrains GWA-T-12 Rnd traces; set TRACES to the directory holding bitbrains-rnd-2013-7 and bitbrains-rnd-2013-8" >&2
		exit 1
	fi
done
J=$(cd "$J" && pwd)
A=$(cd "$A" && pwd)
BIN=$ROOT/bin/recommendation-api-bootstrap
(cd "$ROOT" && go build -tags nodefaultmodel -o "$BIN" ./cmd/recommendation-api)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1796169600} # 2026-12-02T00:00:00Z
cd "$WORK" # relative outputs, so the manifests record no temporary directory
# Major 1 reads 48 h and no maximum: its limits are trained on their scored
# cost and calibrated so that on real VMs it OOMs no more than VPA with its
# target as the limit. Major 2 serves two cost-trained networks side by
# side: the CPU outputs of one whose CPU limit is priced by the share of
# samples it throttles, the memory outputs and confidence of one with the
# default CPU cost (--separate-cpu; docs/model.md); its samples are cut at
# 7-day and 2-day histories.
"$BIN" generate-data --major 1 --trace "$J" "$A" --mix-synthetic 20000 --seed 20261127 --output v1.npz
"$BIN" train --data v1.npz --output m1 --version v1.1.0 --seed 1 --learning-rate 0.01 --cpu-overrun-price 0 --mem-overrun-price 1 --mem-limit-under 0.02 --cpu-limit-under 0.1 --weight-averaging 0.999
"$BIN" generate-data --major 2 --trace "$J" "$A" --trace-history 7d,2d --mix-synthetic 20000 --seed 20261127 --output v2.npz
"$BIN" train --data v2.npz --output m2 --version v2.0.0 --seed 1 --learning-rate 0.01 --cpu-throttle-share --cpu-overrun-price 10 --separate-cpu
# Integrity gates (checksum, signature, golden rows, ONNX Runtime against the
# Go forward pass, int8 against float) and the real-trace gates on the held-out
# Bitbrains containers (validate --trace: OOM days no higher than VPA's, and
# for major 2 less memory slack than VPA in both deployments and than the
# history maximum at equal risk) are enforced. The synthetic baseline gates
# are printed but not enforced: these models are made for real workloads,
# and the synthetic held-out set is not one (docs/model.md).
"$BIN" validate --model m1/predictor.onnx --baseline-gates=false --trace "$J" "$A"
"$BIN" validate --model m2/predictor.onnx --baseline-gates=false --trace "$J" "$A"
for m in 1 2; do
	mkdir -p "$ROOT/internal/defaultmodel/v$m"
	cp "$WORK/m$m/predictor.onnx" "$ROOT/internal/defaultmodel/v$m/predictor.onnx"
	cp "$WORK/m$m/manifest.json" "$ROOT/internal/defaultmodel/v$m/manifest.json"
	echo "default model v$m: $(sha256sum "$ROOT/internal/defaultmodel/v$m/predictor.onnx")"
done
