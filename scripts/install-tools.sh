#!/usr/bin/env bash
# Installs the pinned code generators and debugging tools into .tools/bin with
# `go install` (the Go module proxy is the only source). Idempotent: a stamp
# file records what was installed, and nothing is rebuilt while it matches.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/.tools/bin"
TOOLS=(
  github.com/bufbuild/buf/cmd/buf@v1.75.0
  google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
  google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@v2.33.0
  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@v2.33.0
  github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
)
if [ "${1:-}" = "--bench" ]; then
  TOOLS+=(github.com/bojand/ghz/cmd/ghz@v0.120.0)
fi
mkdir -p "$BIN"
for t in "${TOOLS[@]}"; do
  stamp="$BIN/.stamp-$(echo "$t" | tr '/@' '__')"
  name=$(basename "${t%@*}")
  if [ -f "$stamp" ] && [ -x "$BIN/$name" ]; then continue; fi
  echo "install-tools: go install $t" >&2
  GOBIN="$BIN" go install "$t"
  touch "$stamp"
done
