#!/usr/bin/env bash
# Builds the Python example plugins with componentize-py into
# plugins/dist/python_json_schema.wasm and plugins/dist/python_router.wasm.
# Usage: bash plugins/python/build.sh   (toolchain: bash plugins/python/setup.sh)
#
# componentize-py takes ~15 s per component, so a component is rebuilt only
# when its inputs (source, WIT, tool versions) changed; the last build of each
# is kept in $WEIR_CACHE/python-build. dist/ is written only when its bytes
# change, so the host's file watcher stays quiet.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=toolchain.sh
source "$here/toolchain.sh"
root="$(cd "$here/../.." && pwd)"
dist="$root/plugins/dist"
out="$WEIR_CACHE/python-build"
# The same script stamps the projects `weir new python` writes.
producers="$root/host/templates/python/common/producers.py"
mkdir -p "$dist" "$out"

componentize="$COMPONENTIZE_PY_VENV/bin/componentize-py"
if [ ! -x "$componentize" ]; then
    componentize="$(command -v componentize-py || true)"
fi
if [ -z "$componentize" ]; then
    echo "error: componentize-py $COMPONENTIZE_PY_VERSION is missing: run 'bash plugins/python/setup.sh'" >&2
    exit 1
fi
if [ ! -d "$PYTHON_DEPS/fastjsonschema" ]; then
    echo "error: fastjsonschema $FASTJSONSCHEMA_VERSION is missing from $PYTHON_DEPS: run 'bash plugins/python/setup.sh'" >&2
    exit 1
fi

# build <folder> <module> <world> <dist name> [extra module dirs...]
build() {
    local dir="$here/$1" module=$2 world=$3 name=$4
    shift 4
    local stamp
    stamp="$( (cat "$dir"/*.py "$here"/common/*.py "$producers" "$root"/wit/*.wit; "$componentize" --version; echo "$*") | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$out/$name.wasm" ] || [ "$(cat "$out/$name.inputs" 2>/dev/null)" != "$stamp" ]; then
        local paths=(-p "$dir")
        local extra
        for extra in "$@"; do paths+=(-p "$extra"); done
        # No venv of the caller's leaks into the component's module path.
        env -u VIRTUAL_ENV "$componentize" --quiet -d "$root/wit" -w "$world" componentize \
            "${paths[@]}" -o "$out/$name.wasm.tmp" "$module"
        python3 "$producers" "$out/$name.wasm.tmp" "$("$componentize" --version | cut -d' ' -f2)"
        mv "$out/$name.wasm.tmp" "$out/$name.wasm"
        echo "$stamp" >"$out/$name.inputs"
    fi
    if ! cmp -s "$out/$name.wasm" "$dist/$name.wasm"; then
        cp "$out/$name.wasm" "$dist/$name.wasm"
        echo "built dist/$name.wasm"
    fi
}

build json-schema json_schema validator-plugin python_json_schema "$here/common" "$PYTHON_DEPS"
build router router transformer-plugin python_router "$here/common"
