#!/usr/bin/env bash
# Installs the toolchain the C plugins need: clang, lld, wasi-libc and the
# wasm32 compiler-rt builtins from Debian, wit-bindgen's C generator and
# wasm-tools from crates.io, and the WASI preview1 reactor adapter (from the
# crates.io crate wasmtime ships it in, pinned to the host's wasmtime 48), and
# yyjson's two source files (from the crates.io crate yyjson-sys, which
# carries yyjson 0.10.0, MIT).
# Idempotent and quiet on success; on failure says what failed and shows the
# log. The cargo installs take a few minutes on a fresh machine.
#
# Layout under ${WEIR_CACHE:-$HOME/.cache/weir}/c/ (the folder names carry the
# versions, so a version bump installs anew instead of reusing the old one):
#   wit-bindgen-$WIT_BINDGEN_VERSION/bin/wit-bindgen
#   wasm-tools-$WASM_TOOLS_VERSION/bin/wasm-tools
#   adapter-$ADAPTER_VERSION/wasi_snapshot_preview1.reactor.wasm
#   yyjson-$YYJSON_VERSION/{yyjson.c,yyjson.h,LICENSE}
# plugins/c/env.sh finds them (or the same tools on PATH).
set -euo pipefail

WEIR_CACHE=${WEIR_CACHE:-$HOME/.cache/weir}
LLVM_VERSION=19
WIT_BINDGEN_VERSION=0.61.0
WASM_TOOLS_VERSION=1.263.0
ADAPTER_VERSION=48.0.8
ADAPTER_SHA256=d3a1674fffec103c1d4367d4417a3bd5423cde3cfd56ff3b326b5fc72c0a8ebd
YYJSON_VERSION=0.10.0
YYJSON_CRATE_VERSION=0.1.0
YYJSON_CRATE_SHA256=4ed7a5810c650d227cae9d2cb1c73cf0d6d5901181cb2a53dc07007dfcead82c

ROOT="$WEIR_CACHE/c"
mkdir -p "$ROOT"
LOG="$ROOT/setup.log"

fail() {
    echo "plugins/c/setup.sh: $*" >&2
    echo "---- last lines of $LOG ----" >&2
    tail -n 40 "$LOG" >&2
    exit 1
}

# Runs a step with its output in the log; shows the log only if it fails.
step() {
    local what=$1
    shift
    echo "== $what: $*" >>"$LOG"
    "$@" >>"$LOG" 2>&1 || fail "$what failed (full log: $LOG)"
}

# Two setups at once would run two cargo installs into the same root.
exec 8>"$ROOT/setup.lock"
flock 8
: >"$LOG"

# --- Debian: compiler, linker, libc, builtins ---
packages=(clang-$LLVM_VERSION lld-$LLVM_VERSION wasi-libc libclang-rt-$LLVM_VERSION-dev-wasm32)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    step "apt-get update" apt-get update
    step "apt-get install ${missing[*]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
fi
[ -x "/usr/bin/clang-$LLVM_VERSION" ] || fail "clang-$LLVM_VERSION is installed but /usr/bin/clang-$LLVM_VERSION is missing"
[ -f /usr/lib/wasm32-wasi/libc.a ] || fail "wasi-libc is installed but /usr/lib/wasm32-wasi/libc.a is missing"

# --- crates.io: wit-bindgen (C generator only) and wasm-tools ---
command -v cargo >/dev/null || fail "cargo must be on PATH (this machine kind ships it)"
WIT_BINDGEN="$ROOT/wit-bindgen-$WIT_BINDGEN_VERSION/bin/wit-bindgen"
if [ ! -x "$WIT_BINDGEN" ]; then
    step "cargo install wit-bindgen-cli $WIT_BINDGEN_VERSION" \
        cargo install --locked --quiet wit-bindgen-cli --version "$WIT_BINDGEN_VERSION" \
        --no-default-features --features c --root "$ROOT/wit-bindgen-$WIT_BINDGEN_VERSION"
    [ -x "$WIT_BINDGEN" ] || fail "cargo install finished but $WIT_BINDGEN is missing"
fi
WASM_TOOLS="$ROOT/wasm-tools-$WASM_TOOLS_VERSION/bin/wasm-tools"
if [ ! -x "$WASM_TOOLS" ]; then
    step "cargo install wasm-tools $WASM_TOOLS_VERSION" \
        cargo install --locked --quiet wasm-tools --version "$WASM_TOOLS_VERSION" \
        --no-default-features --features component,validate,print,parse,metadata,strip \
        --root "$ROOT/wasm-tools-$WASM_TOOLS_VERSION"
    [ -x "$WASM_TOOLS" ] || fail "cargo install finished but $WASM_TOOLS is missing"
fi

# --- the preview1 adapter, for a plugin whose C code uses stdio ---
ADAPTER="$ROOT/adapter-$ADAPTER_VERSION/wasi_snapshot_preview1.reactor.wasm"
if [ ! -f "$ADAPTER" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    crate=wasi-preview1-component-adapter-provider
    step "downloading $crate $ADAPTER_VERSION" curl -sSfL -o "$tmp/a.crate" \
        "https://static.crates.io/crates/$crate/$ADAPTER_VERSION/download"
    echo "$ADAPTER_SHA256  $tmp/a.crate" | step "checking the sha256 of $crate" sha256sum -c -
    step "extracting the reactor adapter" tar -xzf "$tmp/a.crate" -C "$tmp" \
        "$crate-$ADAPTER_VERSION/artefacts/wasi_snapshot_preview1.reactor.wasm"
    mkdir -p "$(dirname "$ADAPTER")"
    mv "$tmp/$crate-$ADAPTER_VERSION/artefacts/wasi_snapshot_preview1.reactor.wasm" "$ADAPTER"
fi

# --- yyjson, compiled into every C plugin by plugins/c/env.sh ---
YYJSON="$ROOT/yyjson-$YYJSON_VERSION"
if [ ! -f "$YYJSON/yyjson.c" ]; then
    ytmp=$(mktemp -d)
    trap 'rm -rf "${tmp:-}" "$ytmp"' EXIT
    crate=yyjson-sys
    step "downloading $crate $YYJSON_CRATE_VERSION" curl -sSfL -o "$ytmp/y.crate" \
        "https://static.crates.io/crates/$crate/$YYJSON_CRATE_VERSION/download"
    echo "$YYJSON_CRATE_SHA256  $ytmp/y.crate" | step "checking the sha256 of $crate" sha256sum -c -
    dir="$crate-$YYJSON_CRATE_VERSION/yyjson"
    step "extracting yyjson" tar -xzf "$ytmp/y.crate" -C "$ytmp" "$dir/src/yyjson.c" "$dir/src/yyjson.h" "$dir/LICENSE"
    grep -q "YYJSON_VERSION_STRING \"$YYJSON_VERSION\"" "$ytmp/$dir/src/yyjson.h" \
        || fail "$crate $YYJSON_CRATE_VERSION does not carry yyjson $YYJSON_VERSION"
    mkdir -p "$YYJSON.tmp"
    mv "$ytmp/$dir/src/yyjson.c" "$ytmp/$dir/src/yyjson.h" "$ytmp/$dir/LICENSE" "$YYJSON.tmp/"
    rm -rf "$YYJSON"
    mv "$YYJSON.tmp" "$YYJSON"
fi
