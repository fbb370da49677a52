# Sourced by the C build scripts: finds the toolchain plugins/c/setup.sh
# installs (in ${WEIR_CACHE:-$HOME/.cache/weir}/c, else on PATH) and defines
# build_component, which turns C sources into a component.
# Sets CLANG, WIT_BINDGEN, WASM_TOOLS, WASI_ADAPTER, YYJSON (the folder with
# yyjson.c and yyjson.h) and YYJSON_FLAGS or fails naming setup.sh.

WEIR_C_CACHE="${WEIR_CACHE:-$HOME/.cache/weir}/c"
WEIR_C_WIT_BINDGEN_VERSION=0.61.0
WEIR_C_WASM_TOOLS_VERSION=1.263.0
WEIR_C_ADAPTER_VERSION=48.0.8
WEIR_C_YYJSON_VERSION=0.10.0

weir_c_missing() {
    echo "error: $1 is missing: run 'bash plugins/c/setup.sh' from the weir repository (it installs the C toolchain into $WEIR_C_CACHE)" >&2
    exit 1
}

CLANG=$(command -v clang-19 || true)
[ -n "$CLANG" ] || weir_c_missing "clang-19 (with lld-19, wasi-libc, libclang-rt-19-dev-wasm32)"
[ -f /usr/lib/wasm32-wasi/libc.a ] || weir_c_missing "wasi-libc (/usr/lib/wasm32-wasi/libc.a)"
WIT_BINDGEN="$WEIR_C_CACHE/wit-bindgen-$WEIR_C_WIT_BINDGEN_VERSION/bin/wit-bindgen"
[ -x "$WIT_BINDGEN" ] || WIT_BINDGEN=$(command -v wit-bindgen || true)
[ -n "$WIT_BINDGEN" ] || weir_c_missing "wit-bindgen $WEIR_C_WIT_BINDGEN_VERSION"
WASM_TOOLS="$WEIR_C_CACHE/wasm-tools-$WEIR_C_WASM_TOOLS_VERSION/bin/wasm-tools"
[ -x "$WASM_TOOLS" ] || WASM_TOOLS=$(command -v wasm-tools || true)
[ -n "$WASM_TOOLS" ] || weir_c_missing "wasm-tools $WEIR_C_WASM_TOOLS_VERSION"
WASI_ADAPTER="$WEIR_C_CACHE/adapter-$WEIR_C_ADAPTER_VERSION/wasi_snapshot_preview1.reactor.wasm"
[ -f "$WASI_ADAPTER" ] || weir_c_missing "the WASI preview1 reactor adapter ($WASI_ADAPTER)"
YYJSON="$WEIR_C_CACHE/yyjson-$WEIR_C_YYJSON_VERSION"
[ -f "$YYJSON/yyjson.c" ] || weir_c_missing "yyjson $WEIR_C_YYJSON_VERSION ($YYJSON/yyjson.c)"
# Only the reader and the immutable document are used: no writer (json.c
# writes as serde_json does), no JSON pointer/patch, no non-standard JSON.
YYJSON_FLAGS=(-I "$YYJSON" -DYYJSON_DISABLE_WRITER=1 -DYYJSON_DISABLE_UTILS=1 -DYYJSON_DISABLE_NON_STANDARD=1)

# yyjson_object wasm|native: the path of yyjson compiled for wasm (-O2) or
# natively under the sanitizers the native tests use. yyjson.c is 380 KB:
# compiled once per compiler and flag set and cached beside its sources, so
# a rebuild of the plugins does not pay for it again.
yyjson_object() {
    local cc flags key obj
    if [ "$1" = wasm ]; then
        cc=$CLANG
        flags=(--target=wasm32-wasi -O2 -mbulk-memory -std=c11 "${YYJSON_FLAGS[@]}")
    else
        cc=cc
        flags=(-std=c11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all "${YYJSON_FLAGS[@]}")
    fi
    key=$({ "$cc" --version | head -n 1; echo "${flags[*]}"; } | sha256sum | cut -c1-12)
    obj="$YYJSON/obj/yyjson-$1-$key.o"
    if [ ! -f "$obj" ]; then
        mkdir -p "$YYJSON/obj"
        "$cc" "${flags[@]}" -c "$YYJSON/yyjson.c" -o "$obj.$$" && mv "$obj.$$" "$obj"
    fi
    echo "$obj"
}

# build_component WIT_DIR WORLD OUT.wasm SOURCE.c...
# Generates the world's bindings, compiles them with the sources and yyjson as a
# reactor (-O2 with bulk memory, so that memcpy and memset are one wasm
# instruction each, which wasmtime supports by default: 5-15 % off a JSON-schema
# call; debug info stripped; the 2 KB name section stays for readable
# trap backtraces, and clang's producers section names the language, which
# --strip-all would drop) and makes a component. The WIT's types
# reach the core module through the object file wit-bindgen writes (a
# `component-type` custom section: what `wasm-tools component embed` would
# add; wit-bindgen 0.61's --no-object-file still references that object, so
# linking it is the supported way). The
# preview1 adapter turns the WASI calls wasi-libc makes (stdio, clocks) into
# WASI 0.2, which the host provides.
build_component() {
    local wit=$1 world=$2 out=$3
    shift 3
    local gen
    gen=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$gen'" RETURN
    local base=${world//-/_} yyjson
    yyjson=$(yyjson_object wasm)
    "$WIT_BINDGEN" c "$wit" --world "$world" --out-dir "$gen" >"$gen/wit-bindgen.log" 2>&1 \
        || { cat "$gen/wit-bindgen.log" >&2; return 1; }
    "$CLANG" --target=wasm32-wasi -mexec-model=reactor -O2 -mbulk-memory -std=c11 \
        -Wall -Wextra -Werror -Wno-unused-parameter \
        -I "$gen" "${YYJSON_FLAGS[@]}" -Wl,-z,stack-size=262144 -Wl,--strip-debug \
        -o "$gen/core.wasm" "$@" "$yyjson" "$gen/$base.c" "$gen/${base}_component_type.o"
    "$WASM_TOOLS" component new "$gen/core.wasm" \
        --adapt "wasi_snapshot_preview1=$WASI_ADAPTER" -o "$gen/component.wasm"
    "$WASM_TOOLS" validate "$gen/component.wasm"
    mv "$gen/component.wasm" "$out"
}
