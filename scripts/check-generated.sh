#!/usr/bin/env bash
# check-generated.sh — fail when the committed generated code differs from
# what the .proto files and the pinned plugins produce now.
#
#   scripts/check-generated.sh          check (CI, make check-generated)
#   scripts/check-generated.sh --write  regenerate in place (what make proto should run)
#
# Both run `buf lint` first. The check regenerates everything into a temporary
# copy of the inputs (the working tree is never written, so it is safe while
# others edit) and compares the copy with the repository:
#   api/proto/recommendation/v1/*.pb.go, *.pb.gw.go, *_grpc.pb.go
#   api/openapi/recommendation.swagger.json
#   internal/transport/recommendation.binpb  (descriptors with comments, for server reflection)
#   api/onnx/**/*.pb.go                      (when api/onnx exists; protoc-gen-go only)
# A generated file that is missing, extra or different fails the check with
# "generated code is stale: run make proto" after the diff.
#
# Tools come from $ROOT/.tools/bin (scripts/install-tools.sh, make tools).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$ROOT/.tools/bin:$PATH"
cd "$ROOT"

mode=check
case "${1:-}" in
"") ;;
--write) mode=write ;;
*)
	echo "usage: $0 [--write]" >&2
	exit 2
	;;
esac

for tool in buf protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2; do
	if ! [ -x "$ROOT/.tools/bin/$tool" ]; then
		echo "check-generated: $ROOT/.tools/bin/$tool is missing: run make tools" >&2
		exit 2
	fi
done

# generate writes every generated file below the directory $1, which holds
# buf.yaml, buf.gen.yaml and api/.
generate() {
	(
		cd "$1"
		# The service API: Go, gRPC, gateway (routes from http.yaml) and
		# OpenAPI, as buf.gen.yaml says. --path must name a directory below
		# the module root api/proto.
		buf generate --path api/proto/recommendation
		# The same files with their comments, served by gRPC reflection.
		mkdir -p internal/transport
		buf build --path api/proto/recommendation --as-file-descriptor-set \
			-o internal/transport/recommendation.binpb
		# The ONNX subset: Go types only (it has no services, and
		# buf.gen.yaml's gateway plugin refuses files the http.yaml rules
		# do not bind).
		if [ -d api/onnx ]; then
			local paths=() dir
			while IFS= read -r dir; do
				paths+=(--path "$dir")
			done < <(find api/onnx -name '*.proto' -exec dirname {} \; | sort -u)
			if [ "${#paths[@]}" -gt 0 ]; then
				buf generate "${paths[@]}" --template \
					'{"version":"v2","plugins":[{"local":"protoc-gen-go","out":".","opt":"module=recommendation-api"}]}'
			fi
		fi
	)
}

buf lint

if [ "$mode" = write ]; then
	generate "$ROOT"
	echo "generated code written"
	exit 0
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The inputs, without the generated outputs (so that an output whose .proto
# was deleted shows up as extra).
cp buf.yaml buf.gen.yaml "$TMP/"
cp -R api "$TMP/api"
find "$TMP/api" -type f \( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) -delete
generate "$TMP"

stale=0
# Everything else in api/ was copied as is, so only generated files can differ.
if ! diff -r -u "$ROOT/api" "$TMP/api"; then
	stale=1
fi
if ! cmp -s "$ROOT/internal/transport/recommendation.binpb" "$TMP/internal/transport/recommendation.binpb"; then
	echo "internal/transport/recommendation.binpb differs from what buf build writes"
	stale=1
fi

if [ "$stale" -ne 0 ]; then
	echo "generated code is stale: run make proto" >&2
	exit 1
fi
echo "generated code is current"
