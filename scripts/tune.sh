#!/usr/bin/env bash
# Compares major-2 training recipes on the tuning containers of the
# Bitbrains traces — training containers that generate-data
# --tuning-holdout leaves out of the data and validate --containers tuning
# replays — so that settings are chosen without scoring the held-out
# containers. Each recipe is trained with seeds 1..3 (SEEDS to change) and
# gated at 7- and 2-day histories; the table gives each gate's mean ± the
# spread (population standard deviation) over the seeds. Then each recipe
# named in HELD_OUT (default: the four that were scored on the held-out
# containers, each picked on this table before it was) is trained once on all training
# containers, as make default-model does, and gated on the held-out
# containers.
# Run it as make tune (ONNX Runtime is found as for the other targets).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TRACES=${TRACES:-$ROOT/../shared/data}
J=$(cd "$TRACES/bitbrains-rnd-2013-7" && pwd)
A=$(cd "$TRACES/bitbrains-rnd-2013-8" && pwd)
SEEDS=${SEEDS:-1 2 3}
HELD_OUT=${HELD_OUT:-throttle-share|throttle-share, 60 epochs|split towers, throttle-share, 60 epochs|ensemble of 4, split towers, throttle-share}
ONLY=${ONLY:-} # recipe names, |-separated: run only these (default: all)
BIN=$ROOT/bin/recommendation-api
(cd "$ROOT" && go build -o "$BIN" ./cmd/recommendation-api)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# name | --mix-synthetic | train flags
RECIPES=(
	"v2.0.0's recipe|20000|--learning-rate 0.01 --cpu-throttle-share --cpu-overrun-price 10 --separate-cpu"
	"one network, 20,000 simulated|20000|--learning-rate 0.01"
	"throttle-share, 20,000 simulated|20000|--learning-rate 0.01 --cpu-throttle-share --cpu-overrun-price 10"
	"defaults, 5,000 simulated|5000|"
	"throttle-share|5000|--cpu-throttle-share --cpu-overrun-price 10"
	"throttle-share, 60 epochs|5000|--cpu-throttle-share --cpu-overrun-price 10 --epochs 60"
	"split towers|5000|--split-towers"
	"split towers, throttle-share|5000|--split-towers --cpu-throttle-share --cpu-overrun-price 10"
	"split towers, throttle-share, 60 epochs|5000|--split-towers --cpu-throttle-share --cpu-overrun-price 10 --epochs 60"
	"ensemble of 4, throttle-share|5000|--ensemble 4 --cpu-throttle-share --cpu-overrun-price 10"
	"ensemble of 4, split towers, throttle-share|5000|--ensemble 4 --split-towers --cpu-throttle-share --cpu-overrun-price 10"
)
gen() { # mix output [--tuning-holdout]
	"$BIN" generate-data --major 2 --trace "$J" "$A" --trace-history 7d,2d --mix-synthetic "$1" --seed 20261127 --output "$2" "${@:3}" >/dev/null
}
for r in "${RECIPES[@]}"; do
	IFS='|' read -r name mix flags <<<"$r"
	if [ -n "$ONLY" ]; then case "|$ONLY|" in *"|$name|"*) ;; *) continue ;; esac; fi
	[ -f "tune$mix.npz" ] || gen "$mix" "tune$mix.npz" --tuning-holdout
	for s in $SEEDS; do
		dir="m-${name//[^a-z0-9]/}-$s"
		# shellcheck disable=SC2086
		"$BIN" train --data "tune$mix.npz" --output "$dir" --version v2.9.0 --seed "$s" $flags >/dev/null
		for h in 7d 2d; do
			"$BIN" validate --model "$dir/predictor.onnx" --baseline-gates=false --trace "$J" "$A" --containers tuning --history "$h" >"$dir.$h.log" 2>&1 || true
			echo "$name|$s|$h|$dir.$h.log"
		done
	done
done >runs.txt
python3 "$ROOT/scripts/tune/table.py" runs.txt
for r in "${RECIPES[@]}"; do
	IFS='|' read -r name mix flags <<<"$r"
	case "|$HELD_OUT|" in *"|$name|"*) ;; *) continue ;; esac
	if [ -n "$ONLY" ]; then case "|$ONLY|" in *"|$name|"*) ;; *) continue ;; esac; fi
	[ -f "all$mix.npz" ] || gen "$mix" "all$mix.npz"
	rm -rf held
	# shellcheck disable=SC2086
	"$BIN" train --data "all$mix.npz" --output held --version v2.9.0 --seed 1 $flags >/dev/null
	echo
	echo "\"$name\" trained on every training container (seed 1), gated on the held-out containers:"
	for h in 7d 2d; do
		"$BIN" validate --model held/predictor.onnx --baseline-gates=false --trace "$J" "$A" --history "$h" 2>&1 | grep -E '^  (PASS|FAIL|MISS|info)  real-' | sed "s/^/$h: /" || true
	done
done
