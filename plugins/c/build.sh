#!/usr/bin/env bash
# Builds the C example plugins into plugins/dist/c_json_schema.wasm and
# plugins/dist/c_router.wasm. First runs, natively under AddressSanitizer (a
# leak, overflow or double free fails the build): the strict JSON layer's tests
# (common/json_test.c) and each plugin driven through wit-bindgen's generated
# entry points and post-return functions (tests/abi_test.c).
# Usage: bash plugins/c/build.sh   (toolchain: bash plugins/c/setup.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source ./env.sh
mkdir -p ../dist

# Copies $1 to dist/$2 unless it already has the same bytes, so an unchanged
# plugin keeps its mtime and the host's file watcher stays quiet.
publish() {
    if ! cmp -s "$1" "../dist/$2"; then
        cp "$1" "../dist/$2"
        echo "built dist/$2"
    fi
}

# The C validator template (weir new c) carries a copy of the strict JSON layer.
for f in json.h json.c; do
    cmp -s "common/$f" "../../host/templates/c/validator/$f" || {
        echo "error: host/templates/c/validator/$f differs from plugins/c/common/$f: copy it over" >&2
        exit 1
    }
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
yyjson_native=$(yyjson_object native)

# native_test NAME CFLAGS... SOURCES...: builds and runs one test program.
native_test() {
    local name=$1
    shift
    cc -std=c11 -Wall -Wextra -Werror -Wno-attributes -O1 -g -fsanitize=address,undefined \
        -fno-sanitize-recover=all -o "$out/$name" "$@" -lm
    "$out/$name" >"$out/$name.log" 2>&1 || {
        cat "$out/$name.log" >&2
        echo "error: the C plugins' test $name failed" >&2
        exit 1
    }
}
native_test json_test "${YYJSON_FLAGS[@]}" common/json.c common/json_test.c "$yyjson_native"
for world in validator transformer; do
    "$WIT_BINDGEN" c ../../wit --world $world-plugin --out-dir "$out/$world" >"$out/wit-bindgen.log" 2>&1 \
        || { cat "$out/wit-bindgen.log" >&2; exit 1; }
done
native_test abi_json_schema -I "$out/validator" "${YYJSON_FLAGS[@]}" tests/abi_test.c json-schema/json_schema.c \
    json-schema/schema.c common/json.c "$yyjson_native" "$out/validator/validator_plugin.c"
native_test abi_router -DTRANSFORMER -I "$out/transformer" "${YYJSON_FLAGS[@]}" tests/abi_test.c router/router.c \
    common/json.c "$yyjson_native" "$out/transformer/transformer_plugin.c"

build_component ../../wit validator-plugin "$out/c_json_schema.wasm" \
    json-schema/json_schema.c json-schema/schema.c common/json.c
build_component ../../wit transformer-plugin "$out/c_router.wasm" \
    router/router.c common/json.c
publish "$out/c_json_schema.wasm" c_json_schema.wasm
publish "$out/c_router.wasm" c_router.wasm
