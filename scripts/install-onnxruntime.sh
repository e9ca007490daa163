#!/usr/bin/env bash
# install-onnxruntime.sh — find or install the ONNX Runtime shared library that
# github.com/yalue/onnxruntime_go v1.27.0 needs (it is built against the
# ONNX Runtime 1.24.1 C API).
#
# Usage: scripts/install-onnxruntime.sh [/path/to/libonnxruntime.so...]
#
# Order, first match wins:
#   1. a library the user names: $ONNXRUNTIME_LIB or the first argument, if the
#      file exists;
#   2. a system library (ldconfig, /usr/lib/<triplet>, /usr/local/lib), only if
#      it is provably version 1.24.x;
#   3. the project copy $ROOT/.tools/lib/libonnxruntime.so.1, verified by
#      sha256; if missing or wrong it is fetched with
#      `npm pack onnxruntime-node@1.24.1` (a tarball download, no install
#      scripts run) and extracted from package/bin/napi-v6/linux/<arch>/.
#
# It is idempotent: a second run finds the verified copy and does nothing.
# All messages go to stderr; the last line on stdout is the absolute path of the
# library to use (the Makefile captures it into ONNXRUNTIME_LIB).
set -euo pipefail

ORT_VERSION=1.24.1
ORT_MINOR=1.24
# sha256 of package/bin/napi-v6/linux/x64/libonnxruntime.so.1 in onnxruntime-node@1.24.1.
SHA256_X64=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST_DIR="$ROOT/.tools/lib"
DEST="$DEST_DIR/libonnxruntime.so.1"
# For arm64 there is no pinned hash: the hash seen at install time is recorded
# here, so later runs can still tell an intact copy from a damaged one.
DEST_SUM="$DEST.sha256"

log() { printf 'install-onnxruntime: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
found() { # print the chosen library as the last stdout line and stop
	log "using $1"
	printf '%s\n' "$1"
	exit 0
}
abspath() { # absolute path without resolving the final symlink's name away
	local d
	d="$(cd "$(dirname "$1")" && pwd)" || return 1
	printf '%s/%s\n' "$d" "$(basename "$1")"
}
sha256() { sha256sum "$1" | cut -d' ' -f1; }

case "$(uname -m)" in
x86_64 | amd64) ARCH=x64 ;;
aarch64 | arm64) ARCH=arm64 ;;
*) ARCH="" ;;
esac

# 1. A library the user names.
USER_LIB="${ONNXRUNTIME_LIB:-${1:-}}"
if [[ -n "$USER_LIB" ]]; then
	if [[ -f "$USER_LIB" ]]; then
		found "$(abspath "$USER_LIB")"
	fi
	log "warning: given library $USER_LIB does not exist; looking elsewhere"
fi

# 2. A system library, accepted only if it is provably ONNX Runtime 1.24.x:
# its real file name ends in .so.1.24.N, or (unversioned name) the binary
# embeds the version string "1.24.N". Anything else is skipped: a different
# minor version breaks onnxruntime_go's C API expectations at run time.
system_version_ok() {
	local real name
	real="$(readlink -f "$1")" || return 1
	name="$(basename "$real")"
	if [[ "$name" =~ \.so\.([0-9]+\.[0-9]+\.[0-9]+)$ ]]; then
		[[ "${BASH_REMATCH[1]}" == "$ORT_MINOR".* ]]
		return
	fi
	command -v strings >/dev/null 2>&1 || return 1
	strings -a "$real" 2>/dev/null | grep -Eqx "${ORT_MINOR//./\\.}\.[0-9]+"
}

candidates=()
if command -v ldconfig >/dev/null 2>&1; then
	while read -r path; do
		candidates+=("$path")
	done < <(ldconfig -p 2>/dev/null | awk '/libonnxruntime\.so\.1[ .]/ {print $NF}')
fi
for dir in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/local/lib; do
	for path in "$dir"/libonnxruntime.so.1 "$dir"/libonnxruntime.so.1.*; do
		[[ -f "$path" ]] && candidates+=("$path")
	done
done
for path in ${candidates[@]+"${candidates[@]}"}; do
	if system_version_ok "$path"; then
		found "$path"
	fi
	log "skipping system library $path: not provably ONNX Runtime $ORT_MINOR.x"
done

# 3. The project copy, fetched from npm when missing or damaged.
[[ -n "$ARCH" ]] || die "no ONNX Runtime build for architecture $(uname -m) in onnxruntime-node; pass a library path or set ONNXRUNTIME_LIB"
want=""
if [[ "$ARCH" == x64 ]]; then
	want="$SHA256_X64"
elif [[ -f "$DEST_SUM" ]]; then
	want="$(cat "$DEST_SUM")"
fi
if [[ -f "$DEST" && -n "$want" && "$(sha256 "$DEST")" == "$want" ]]; then
	log "$DEST is present and verified (sha256 $want)"
	found "$DEST"
fi
[[ -f "$DEST" ]] && log "$DEST does not match its sha256; fetching it again"

command -v npm >/dev/null 2>&1 || die "npm is needed to fetch onnxruntime-node@$ORT_VERSION (apt-get install npm), or pass a library path / set ONNXRUNTIME_LIB"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log "fetching onnxruntime-node@$ORT_VERSION with npm pack (no install scripts run)"
tgz="$(cd "$tmp" && npm pack --ignore-scripts --silent "onnxruntime-node@$ORT_VERSION" | tail -n 1)" ||
	die "npm pack onnxruntime-node@$ORT_VERSION failed"
[[ -f "$tmp/$tgz" ]] || die "npm pack did not produce a tarball (got '$tgz')"
member="package/bin/napi-v6/linux/$ARCH/libonnxruntime.so.1"
tar -xzf "$tmp/$tgz" -C "$tmp" "$member" || die "$member is not in $tgz"
got="$(sha256 "$tmp/$member")"
if [[ "$ARCH" == x64 ]]; then
	[[ "$got" == "$SHA256_X64" ]] || die "sha256 of $member is $got; want $SHA256_X64"
	log "sha256 verified: $got"
else
	log "sha256 of $member (arm64, no pinned hash; accepted and recorded): $got"
fi

mkdir -p "$DEST_DIR"
install -m 0644 "$tmp/$member" "$DEST.tmp.$$"
mv -f "$DEST.tmp.$$" "$DEST"
printf '%s\n' "$got" >"$DEST_SUM"
log "installed $DEST"
found "$DEST"
