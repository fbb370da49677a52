#!/usr/bin/env bash
# Builds the JavaScript example plugins into plugins/dist/js_<name>.wasm:
# esbuild bundles each app.js with its npm imports into one ES module, then
# `jco componentize` (componentize-js: SpiderMonkey in StarlingMonkey, snapshot
# by wizer) turns it into a component of the example's world.
# Usage: bash plugins/js/build.sh   (from any directory; a no-op build is fast)
# Toolchain: bash plugins/js/setup.sh (into ${WEIR_CACHE:-~/.cache/weir}/js).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PLUGINS="$(dirname "$HERE")"
WIT="$(dirname "$PLUGINS")/wit"
WEIR_CACHE=${WEIR_CACHE:-$HOME/.cache/weir}

modules=""
for candidate in "$WEIR_CACHE/js/node_modules" "$HERE/node_modules"; do
    if [ -x "$candidate/.bin/jco" ] && [ -x "$candidate/.bin/esbuild" ]; then
        modules=$candidate
        break
    fi
done
if [ -z "$modules" ]; then
    echo "error: the JavaScript toolchain (jco, esbuild) is missing from $WEIR_CACHE/js: run 'bash plugins/js/setup.sh'" >&2
    exit 1
fi
command -v node >/dev/null || { echo "error: node is not on PATH: run 'bash plugins/js/setup.sh'" >&2; exit 1; }

# Intermediate files stay out of the source tree (beside the other guests').
work="${WEIR_GUEST_TARGET_DIR:-$HERE/target}/plugins-js"
mkdir -p "$work" "$PLUGINS/dist"

publish() {
    if ! cmp -s "$1" "$PLUGINS/dist/$2"; then
        cp "$1" "$PLUGINS/dist/$2"
        echo "built dist/$2"
    fi
}

# What a plugin does not use is left out of the engine: no fetch or HTTP
# server, no clocks, no random numbers. stdio stays, so console.log and
# uncaught errors reach the host's log.
DISABLE=(http fetch-event clocks random)

# build <example dir> <world> <dist name>
build() {
    local name=$1 world=$2 out=$3
    local bundle="$work/$name.js" wasm="$work/$name.wasm" stamp="$work/$name.stamp"
    # `--main-fields`: the neutral platform reads no package.json entry point
    # by default, and ajv's packages name theirs in `main` (CommonJS).
    # The engine has no Unicode property escapes (no ICU): a literal such as
    # fast-uri's /\P{ASCII}/u fails the whole module at load, so esbuild
    # turns each into `new RegExp(…)`, which throws only if it runs (fast-uri:
    # for a %-encoded host in a schema's $id; init then refuses the schema).
    # `weir:*` imports are the component's, not npm's.
    NODE_PATH="$modules" "$modules/.bin/esbuild" "$HERE/$name/app.js" --bundle \
        --format=esm --platform=neutral --main-fields=module,main \
        --supported:regexp-unicode-property-escapes=false \
        --external:'weir:*' --log-level=warning --outfile="$bundle"
    # componentize takes ~25 s: skip it when nothing it reads has changed.
    local want
    want=$(cat "$bundle" "$WIT"/*.wit <(echo "$world ${DISABLE[*]} $(readlink -f "$modules")") | sha256sum)
    if [ ! -f "$wasm" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        rm -f "$stamp"
        (cd "$work" && "$modules/.bin/jco" componentize "$bundle" --wit "$WIT" \
            --world-name "$world" --disable "${DISABLE[@]}" -o "$wasm" >/dev/null)
        echo "$want" >"$stamp"
    fi
    publish "$wasm" "$out"
}

build json-schema validator-plugin js_json_schema.wasm
build router transformer-plugin js_router.wasm
