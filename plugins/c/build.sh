#!/usr/bin/env bash
# Builds the C example plugins into plugins/dist/c_json_schema.wasm and
# plugins/dist/c_router.wasm, after running the JSON parser's tests natively
# (under AddressSanitizer, so a leak or overflow fails the build).
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

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cc -std=c11 -Wall -Wextra -Werror -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
    common/json.c common/json_test.c -o "$out/json_test" -lm
"$out/json_test" >"$out/json_test.log" || { cat "$out/json_test.log" >&2; echo "error: plugins/c/common/json_test.c failed" >&2; exit 1; }

build_component ../../wit validator-plugin "$out/c_json_schema.wasm" \
    json-schema/json_schema.c json-schema/schema.c common/json.c
build_component ../../wit transformer-plugin "$out/c_router.wasm" \
    router/router.c common/json.c
publish "$out/c_json_schema.wasm" c_json_schema.wasm
publish "$out/c_router.wasm" c_router.wasm
