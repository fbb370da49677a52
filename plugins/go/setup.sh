#!/usr/bin/env bash
# Gets what the Go plugins need: the machine's Go (1.26; nothing is
# downloaded for it), the modules plugins/go/go.mod names (from the Go module
# proxy into ${WEIR_CACHE:-$HOME/.cache/weir}/go/mod, where go.sum checks
# them), and wasm-tools and the WASI adapter, which plugins/c/setup.sh
# installs (run here if they are missing). Idempotent and quiet on success.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
WEIR_CACHE=${WEIR_CACHE:-$HOME/.cache/weir}
command -v go >/dev/null || { echo "plugins/go/setup.sh: go must be on PATH (this machine kind ships Go 1.26)" >&2; exit 1; }
if [ ! -x "$WEIR_CACHE/c/wasm-tools-1.263.0/bin/wasm-tools" ] \
    || [ ! -f "$WEIR_CACHE/c/adapter-48.0.8/wasi_snapshot_preview1.reactor.wasm" ]; then
    WEIR_CACHE="$WEIR_CACHE" bash ../c/setup.sh
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
GOMODCACHE="$WEIR_CACHE/go/mod" GOCACHE="$WEIR_CACHE/go/build" GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
    go mod download >"$log" 2>&1 || { cat "$log" >&2; echo "plugins/go/setup.sh: go mod download failed" >&2; exit 1; }
# Fails here, not at the first build, on a Go the runtime patch is not for.
source ./env.sh
