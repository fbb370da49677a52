# Sourced by plugins/go/build.sh: finds the toolchain (the machine's Go,
# wasm-tools and the WASI preview1 reactor adapter that plugins/c/setup.sh
# installs) and defines go_component, which builds a Go package into a
# component. Fails naming plugins/go/setup.sh when something is missing.

WEIR_CACHE=${WEIR_CACHE:-$HOME/.cache/weir}
WEIR_C_CACHE="$WEIR_CACHE/c"
# What plugins/go/_goruntime/mem_sbrk.go was patched from (see its header).
WEIR_GO_RUNTIME_SHA256=1738c14a0436c8d26e9e383ef3c4aa311beaa521811964a2f23585c4e2b99bf4

weir_go_missing() {
    echo "error: $1: run 'bash plugins/go/setup.sh' from the weir repository" >&2
    exit 1
}

command -v go >/dev/null || weir_go_missing "go (1.26) is not on PATH"
export GOMODCACHE="$WEIR_CACHE/go/mod" GOCACHE="$WEIR_CACHE/go/build" GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"
GOROOT_RUNTIME="$(go env GOROOT)/src/runtime/mem_sbrk.go"
[ "$(sha256sum <"$GOROOT_RUNTIME" | cut -d' ' -f1)" = "$WEIR_GO_RUNTIME_SHA256" ] || {
    echo "error: $GOROOT_RUNTIME is not the one plugins/go/_goruntime/mem_sbrk.go patches ($(go version)); carry the patch over to this Go" >&2
    exit 1
}
WASM_TOOLS="$WEIR_C_CACHE/wasm-tools-1.263.0/bin/wasm-tools"
[ -x "$WASM_TOOLS" ] || WASM_TOOLS=$(command -v wasm-tools || true)
[ -n "$WASM_TOOLS" ] || weir_go_missing "wasm-tools 1.263.0 is missing"
WASI_ADAPTER="$WEIR_C_CACHE/adapter-48.0.8/wasi_snapshot_preview1.reactor.wasm"
[ -f "$WASI_ADAPTER" ] || weir_go_missing "the WASI preview1 reactor adapter ($WASI_ADAPTER) is missing"

# go_component WIT_DIR WORLD PACKAGE OUT.wasm
# Mainline Go builds a wasip1 reactor (-buildmode=c-shared: _initialize runs
# the runtime and the package inits; //go:wasmexport functions are the
# world's exports) with the runtime patch laid over (-overlay); wasm-tools
# embeds the world's WIT and makes the component, adapting the WASI
# preview1 calls the runtime makes (clocks, random, stdio) to WASI 0.2. The
# adapter allocates with memory.grow, as it is first called before the Go
# runtime can run the plugin's cabi_realloc.
go_component() {
    local wit=$1 world=$2 package=$3 out=$4 tmp
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" RETURN
    printf '{"Replace":{"%s":"%s"}}\n' "$GOROOT_RUNTIME" "$PWD/_goruntime/mem_sbrk.go" >"$tmp/overlay.json"
    GOOS=wasip1 GOARCH=wasm go build -overlay "$tmp/overlay.json" -buildmode=c-shared -trimpath \
        -o "$tmp/core.wasm" "$package"
    "$WASM_TOOLS" component embed "$wit" --world "$world" "$tmp/core.wasm" -o "$tmp/embedded.wasm"
    "$WASM_TOOLS" component new "$tmp/embedded.wasm" --realloc-via-memory-grow \
        --adapt "wasi_snapshot_preview1=$WASI_ADAPTER" -o "$tmp/component.wasm"
    "$WASM_TOOLS" validate "$tmp/component.wasm"
    mv "$tmp/component.wasm" "$out"
}
