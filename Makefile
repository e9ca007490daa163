# recommendation-api — every target installs what it needs first.
#   make run    build and serve (gRPC 127.0.0.1:50051, REST 127.0.0.1:8080, no authentication) on the embedded default model
#   make test   formatting, vet, generated-code check, all tests (race detector on), a 30-kill crash loop, fuzz-short
#   make crash  the crash loop: 300 SIGKILLs of the real server (CRASH_FLAGS="-n 1000 -v")
#   make soak   the 10-minute soak with tokens, TLS, swaps, jobs and kills; markdown on stdout (SOAK_FLAGS="-duration 3m")
#   make fuzz   every fuzz target for FUZZTIME each (default 1m); fuzz-short runs each for 3 s
SHELL := /bin/bash
ROOT  := $(CURDIR)
TOOLS := $(ROOT)/.tools/bin
export PATH := $(TOOLS):$(PATH)
BIN   := bin/recommendation-api
# The ONNX Runtime shared library: a path you give wins (make run ONNXRUNTIME_LIB=/path/lib.so).
ORT_LIB = $(shell scripts/install-onnxruntime.sh $(ONNXRUNTIME_LIB) | tail -n 1)
GO_PKGS := ./...
# Packages with concurrent code run under the race detector.
RACE_PKGS := ./internal/serving/... ./internal/registry/... ./internal/rollback/... ./internal/transport/... ./internal/trainer/... ./internal/jobs/... ./internal/traces/... ./internal/etcdstore/... ./internal/auth/... ./cmd/...

.PHONY: all build run test crash soak soak-swaps fuzz fuzz-short deps deps-system tools ort proto check-generated fmt-check vet pipeline bench default-model seed-spread heuristics tune pipeline-seeds evaluate-defaults compose-check clean console console-check console-screenshots

all: build

build:
	go build -o $(BIN) ./cmd/recommendation-api

## deps: everything the tests need, from the Go proxy, npm and Debian only.
deps: tools ort deps-system

tools:
	scripts/install-tools.sh

ort:
	@scripts/install-onnxruntime.sh $(ONNXRUNTIME_LIB) >/dev/null

# Debian packages used by tests: python3-onnx (onnx.checker on exported
# files), docker-compose (validates docker-compose.yml; no engine needed),
# etcd-server (a real etcd the etcd registry's tests start on loopback) and
# prometheus (its promtool checks deploy/prometheus.yml). promtool is optional:
# where apt-get cannot install it, compose-check says so and skips that check.
# npm builds the console (make console, console-check); chromium runs the
# console's browser tests (cmd/recommendation-api/console_test.go).
deps-system:
	@need=""; opt=""; \
	/usr/bin/python3 -c 'import onnx' 2>/dev/null || need="$$need python3-onnx"; \
	command -v docker-compose >/dev/null || need="$$need docker-compose"; \
	command -v etcd >/dev/null || need="$$need etcd-server"; \
	command -v npm >/dev/null || need="$$need npm"; \
	command -v chromium >/dev/null || need="$$need chromium"; \
	command -v promtool >/dev/null || opt="prometheus"; \
	if [ -n "$$need$$opt" ]; then \
	  echo "installing$$need $$opt with apt-get"; \
	  apt-get update -qq; \
	  if [ -n "$$need" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null || exit 1; fi; \
	  if [ -n "$$opt" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$opt >/dev/null \
	    || echo "prometheus (promtool) could not be installed; compose-check will skip deploy/prometheus.yml"; fi; \
	fi

# The console (http://127.0.0.1:8080/console/) shows the evaluate reports in
# data/evaluations; the committed ones (of the embedded default model) are
# copied there unless files of those names exist.
run: build
	@mkdir -p data/evaluations; for f in docs/evaluation/*-heldout.json; do [ -e data/evaluations/$$(basename $$f) ] || cp $$f data/evaluations/; done
	ONNXRUNTIME_LIB=$(ORT_LIB) ./$(BIN) serve --insecure-no-auth

# The second line includes internal/reliability: its test is the crash loop with 30 kills.
test: deps fmt-check vet check-generated compose-check console-check
	ONNXRUNTIME_LIB=$(ORT_LIB) go test -race -timeout 20m $(RACE_PKGS)
	ONNXRUNTIME_LIB=$(ORT_LIB) go test -timeout 10m $$(go list ./... | grep -v -e /internal/serving -e /internal/registry -e /internal/rollback -e /internal/transport -e /internal/trainer -e /internal/jobs -e /internal/traces -e /internal/etcdstore -e /internal/auth -e /cmd/)
	@$(MAKE) --no-print-directory fuzz-short

## crash, soak: the reliability checks (internal/reliability); docs/reliability.md has a run of each.
crash: ort
	ONNXRUNTIME_LIB=$(ORT_LIB) go run ./internal/reliability/cmd/crash $(CRASH_FLAGS)

soak: ort
	ONNXRUNTIME_LIB=$(ORT_LIB) go run ./internal/reliability/cmd/soak $(SOAK_FLAGS)

# soak-swaps: RSS against swaps alone: a swap every 25 ms for 10 minutes
# (past the registry's 10,000 kept history events), no kill, no job.
SOAK_SWAPS_FLAGS ?= -duration 10m -swap-every 25ms -kills -1 -train-every -1s
soak-swaps: ort
	ONNXRUNTIME_LIB=$(ORT_LIB) go run ./internal/reliability/cmd/soak $(SOAK_SWAPS_FLAGS)

## fuzz: every decoder facing outside input, package:target. Seed corpora are
## in each package's testdata/fuzz/<target>.
FUZZ_TARGETS := \
	internal/model:FuzzParseVersion internal/model:FuzzParseManifest \
	internal/auth:FuzzParse \
	internal/features:FuzzNormalize internal/features:FuzzPercentiles \
	internal/transport:FuzzPredictRequest internal/transport:FuzzPredictAdmissible \
	internal/onnxfile:FuzzDecode internal/onnxfile:FuzzCheck \
	internal/trainer:FuzzReadNPZ \
	internal/traces:FuzzReadBitbrains internal/traces:FuzzReadGeneric \
	internal/registry:FuzzOpenLayout1
FUZZTIME ?= 1m

fuzz: ort
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
	  ONNXRUNTIME_LIB=$(ORT_LIB) go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg; done

# fuzz-short (in make test) counts executions instead of timing them: with a
# duration, Go 1.26's fuzz coordinator can report a bare "context deadline
# exceeded" at the deadline while a worker is mid-input (golang/go#75804,
# fixed in Go 1.27), a failure with no crasher behind it.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2000x

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	go vet ./...

proto: tools
	scripts/check-generated.sh --write

check-generated: tools
	scripts/check-generated.sh

compose-check: deps-system
	docker-compose -f docker-compose.yml config -q
	@if command -v promtool >/dev/null; then promtool check config deploy/prometheus.yml; \
	else echo "compose-check: promtool not found (Debian package prometheus); skipping the check of deploy/prometheus.yml"; fi

## pipeline: the four steps of the model pipeline on a small sample.
pipeline: build ort
	./$(BIN) generate-data --samples 20000 --output data/training_data.npz --seed 1
	ONNXRUNTIME_LIB=$(ORT_LIB) ./$(BIN) train --data data/training_data.npz --output models/ --seed 1
	ONNXRUNTIME_LIB=$(ORT_LIB) ./$(BIN) validate --model models/predictor.onnx
	ONNXRUNTIME_LIB=$(ORT_LIB) ./$(BIN) export --model models/predictor.onnx --output models/export

## default-model: regenerate the model embedded in the binary (deterministic).
default-model: ort
	ONNXRUNTIME_LIB=$(ORT_LIB) scripts/make-default-model.sh

## seed-spread: the major-2 default recipe trained with seeds 1..4, each gated on the held-out traces (docs/model.md).
seed-spread: ort
	ONNXRUNTIME_LIB=$(ORT_LIB) scripts/seed-spread.sh

## heuristics: memory and CPU limit heuristics at equal risk on the tuning containers of the Bitbrains traces (docs/evaluation.md).
TRACES ?= ../shared/data
heuristics:
	go run ./internal/traces/cmd/heuristics $(TRACES)/bitbrains-rnd-2013-7 $(TRACES)/bitbrains-rnd-2013-8

## tune: major-2 training recipes compared on the tuning containers over three seeds, then those scored on the held-out ones (docs/model.md).
tune: ort
	ONNXRUNTIME_LIB=$(ORT_LIB) scripts/tune.sh

## pipeline-seeds: the README's four-step synthetic pipeline with seeds 1, 3, 7, 42 per major (docs/model.md).
pipeline-seeds: ort
	ONNXRUNTIME_LIB=$(ORT_LIB) scripts/pipeline-seeds.sh

## evaluate-defaults: docs/evaluation/ — the default models and the baselines on the shared traces.
evaluate-defaults: ort
	ONNXRUNTIME_LIB=$(ORT_LIB) scripts/evaluate-defaults.sh

bench: build ort
	scripts/install-tools.sh --bench
	ONNXRUNTIME_LIB=$(ORT_LIB) scripts/bench.sh

## console: rebuild the operator console (web/ → internal/console/dist, which
## is committed and embedded) and refresh the vendored axe-core of its tests.
console: deps-system
	npm ci --no-audit --no-fund --loglevel=error
	node web/build.mjs
	cp node_modules/axe-core/axe.min.js cmd/recommendation-api/testdata/axe.min.js

# console-check: the committed build is what the sources and package-lock.json
# give now (the build is deterministic), as check-generated does for protobuf.
console-check: deps-system
	@npm ci --no-audit --no-fund --loglevel=error
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; node web/build.mjs "$$tmp/dist" && \
	if ! diff -r internal/console/dist "$$tmp/dist" >/dev/null || ! cmp -s node_modules/axe-core/axe.min.js cmd/recommendation-api/testdata/axe.min.js; then \
	  diff -r internal/console/dist "$$tmp/dist" | head -20; echo "console build is stale: run make console"; exit 1; fi

## console-screenshots: the pictures in docs/console, from the browser test.
console-screenshots: deps-system ort
	RECO_CONSOLE_SCREENSHOTS=$(ROOT)/docs/console ONNXRUNTIME_LIB=$(ORT_LIB) go test -count=1 -run TestConsoleBrowser ./cmd/recommendation-api

clean:
	rm -rf bin data models node_modules
