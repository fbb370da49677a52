#!/usr/bin/env bash
# Builds {{name_snake}}.wasm in this directory: bash build.sh (from anywhere).
# Mainline Go (1.26) builds a wasip1 reactor whose //go:wasmexport functions
# are the world's exports, with _goruntime/mem_sbrk.go laid over the runtime's
# own (see its header: the WASI adapter shares the memory); wasm-tools embeds
# wit/plugin.wit and makes the component, adapting WASI preview1 to 0.2.
# Toolchain: go 1.26 on PATH, wasm-tools 1.263.0 and the wasmtime 48 reactor
# adapter, which weir's plugins/go/setup.sh installs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
world={{world}}

cache="${WEIR_CACHE:-$HOME/.cache/weir}"
missing() {
    echo "error: $1 is missing: run 'bash plugins/go/setup.sh' in the weir repository" >&2
    exit 1
}
command -v go >/dev/null || missing "go 1.26"
wasm_tools="$cache/c/wasm-tools-1.263.0/bin/wasm-tools"
[ -x "$wasm_tools" ] || wasm_tools=$(command -v wasm-tools || true)
[ -n "$wasm_tools" ] || missing "wasm-tools 1.263.0"
adapter="$cache/c/adapter-48.0.8/wasi_snapshot_preview1.reactor.wasm"
[ -f "$adapter" ] || missing "the WASI preview1 reactor adapter ($adapter)"
runtime="$(go env GOROOT)/src/runtime/mem_sbrk.go"
[ "$(sha256sum <"$runtime" | cut -d' ' -f1)" = 1738c14a0436c8d26e9e383ef3c4aa311beaa521811964a2f23585c4e2b99bf4 ] || {
    echo "error: _goruntime/mem_sbrk.go patches Go 1.26.8's; this is $(go version)" >&2
    exit 1
}

export GOCACHE="${GOCACHE:-$cache/go/build}" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '{"Replace":{"%s":"%s"}}\n' "$runtime" "$PWD/_goruntime/mem_sbrk.go" >"$tmp/overlay.json"
GOOS=wasip1 GOARCH=wasm go build -overlay "$tmp/overlay.json" -buildmode=c-shared -trimpath -o "$tmp/core.wasm" .
"$wasm_tools" component embed wit --world "$world" "$tmp/core.wasm" -o "$tmp/embedded.wasm"
"$wasm_tools" component new "$tmp/embedded.wasm" --realloc-via-memory-grow \
    --adapt "wasi_snapshot_preview1=$adapter" -o "$tmp/component.wasm"
"$wasm_tools" validate "$tmp/component.wasm"
mv "$tmp/component.wasm" {{name_snake}}.wasm
echo "built {{name_snake}}.wasm"
