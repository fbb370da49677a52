#!/usr/bin/env bash
# Builds {{name_snake}}.wasm in this directory: bash build.sh (from anywhere).
# clang compiles the C sources and wit-bindgen's bindings (written to gen/)
# for wasm32-wasi as a reactor; wasm-tools makes the component, with WASI
# preview1 calls (stdio) adapted to WASI 0.2. Toolchain: clang-19, lld-19,
# wasi-libc and libclang-rt-19-dev-wasm32 (Debian), wit-bindgen 0.61.0 and
# wasm-tools 1.263.0 (crates.io), the wasmtime 48 reactor adapter, and
# yyjson 0.10.0's sources (the JSON library json.c builds on, compiled in
# when json.c is here); weir's plugins/c/setup.sh installs them all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
world={{world}}
sources=(*.c)

cache="${WEIR_CACHE:-$HOME/.cache/weir}/c"
missing() {
    echo "error: $1 is missing: run 'bash plugins/c/setup.sh' in the weir repository (it installs the C toolchain into $cache)" >&2
    exit 1
}
clang=$(command -v clang-19 || true)
[ -n "$clang" ] || missing "clang-19"
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing "wasi-libc"
wit_bindgen="$cache/wit-bindgen-0.61.0/bin/wit-bindgen"
[ -x "$wit_bindgen" ] || wit_bindgen=$(command -v wit-bindgen || true)
[ -n "$wit_bindgen" ] || missing "wit-bindgen 0.61.0"
wasm_tools="$cache/wasm-tools-1.263.0/bin/wasm-tools"
[ -x "$wasm_tools" ] || wasm_tools=$(command -v wasm-tools || true)
[ -n "$wasm_tools" ] || missing "wasm-tools 1.263.0"
adapter="$cache/adapter-48.0.8/wasi_snapshot_preview1.reactor.wasm"
[ -f "$adapter" ] || missing "the WASI preview1 reactor adapter ($adapter)"

base=${world//-/_}
if ! log=$("$wit_bindgen" c wit --world "$world" --out-dir gen 2>&1); then
    echo "$log" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
yyjson_flags=() yyjson_object=()
if [ -f json.c ]; then
    yyjson="$cache/yyjson-0.10.0"
    [ -f "$yyjson/yyjson.c" ] || missing "yyjson 0.10.0 ($yyjson/yyjson.c)"
    yyjson_flags=(-I "$yyjson" -DYYJSON_DISABLE_WRITER=1 -DYYJSON_DISABLE_UTILS=1 -DYYJSON_DISABLE_NON_STANDARD=1)
    # compiled once per project (it takes a while), into gen/
    [ -f gen/yyjson.o ] || "$clang" --target=wasm32-wasi -O2 -mbulk-memory -std=c11 "${yyjson_flags[@]}" -c "$yyjson/yyjson.c" -o gen/yyjson.o
    yyjson_object=(gen/yyjson.o)
fi
"$clang" --target=wasm32-wasi -mexec-model=reactor -O2 -mbulk-memory -std=c11 -Wall -Wextra \
    -I gen "${yyjson_flags[@]}" -Wl,-z,stack-size=262144 -Wl,--strip-debug \
    -o "$tmp/core.wasm" "${sources[@]}" "${yyjson_object[@]}" "gen/$base.c" "gen/${base}_component_type.o"
"$wasm_tools" component new "$tmp/core.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$tmp/component.wasm"
"$wasm_tools" validate "$tmp/component.wasm"
mv "$tmp/component.wasm" {{name_snake}}.wasm
echo "built {{name_snake}}.wasm"
