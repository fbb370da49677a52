#!/usr/bin/env bash
# Builds the Go example plugins into plugins/dist/go_json_schema.wasm and
# plugins/dist/go_router.wasm, after the strict JSON package's native tests
# (go test ./strictjson). Usage: bash plugins/go/build.sh
# (toolchain: bash plugins/go/setup.sh)
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

# The weir new go templates carry copies of the ABI package, the runtime
# patch and strictjson, with the project's module name in import paths.
templates=../../host/templates/go
for f in weir/weir.go weir/validator/validator.go weir/transformer/transformer.go _goruntime/mem_sbrk.go \
    strictjson/strictjson.go; do
    copy="$templates/common/$f"
    [ "$f" = strictjson/strictjson.go ] && copy="$templates/validator/$f"
    sed 's#"weirplugins/#"{{name_snake}}/#' "$f" | cmp -s - "$copy" || {
        echo "error: $copy differs from plugins/go/$f (import paths aside): copy it over" >&2
        exit 1
    }
done

go test -count=1 ./strictjson/ >/dev/null || { go test ./strictjson/; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go_component ../../wit validator-plugin ./json-schema "$out/go_json_schema.wasm"
go_component ../../wit transformer-plugin ./router "$out/go_router.wasm"
publish "$out/go_json_schema.wasm" go_json_schema.wasm
publish "$out/go_router.wasm" go_router.wasm
