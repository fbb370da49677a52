#!/usr/bin/env bash
# Builds {{name_snake}}.wasm in this directory: bash build.sh (from anywhere).
# esbuild bundles app.js with the npm packages it imports (npm install them
# here) into one module; jco componentize embeds it in SpiderMonkey.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
toolchain="${WEIR_CACHE:-$HOME/.cache/weir}/js/node_modules"
if [ -x "$toolchain/.bin/jco" ] && [ -x "$toolchain/.bin/esbuild" ]; then
    jco="$toolchain/.bin/jco" esbuild="$toolchain/.bin/esbuild"
else
    jco="$(command -v jco || true)" esbuild="$(command -v esbuild || true)"
fi
if [ -z "$jco" ] || [ -z "$esbuild" ] || ! command -v node >/dev/null; then
    echo "error: the JavaScript toolchain (node, jco, esbuild) is missing: run 'bash plugins/js/setup.sh' in the weir repository" >&2
    exit 1
fi
bundle="$(mktemp -d)"
trap 'rm -rf "$bundle"' EXIT
NODE_PATH="$toolchain" "$esbuild" app.js --bundle --format=esm --main-fields=module,main \
    --platform=neutral --external:'weir:*' --log-level=warning --outfile="$bundle/app.js"
# No HTTP, clocks or random numbers (add them back by removing them here);
# stdio stays, so console.log reaches weir's log.
"$jco" componentize "$bundle/app.js" --wit "$PWD/wit" --world-name {{world}} \
    --disable http fetch-event clocks random -o {{name_snake}}.wasm >/dev/null
echo "built {{name_snake}}.wasm"
