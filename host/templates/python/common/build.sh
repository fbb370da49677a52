#!/usr/bin/env bash
# Builds {{name_snake}}.wasm in this directory: bash build.sh (from anywhere).
# Pure-Python packages your plugin imports go in deps/ (pip install --target deps NAME).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
version=0.25.1
componentize="${WEIR_CACHE:-$HOME/.cache/weir}/componentize-py-$version/bin/componentize-py"
if [ ! -x "$componentize" ]; then
    componentize="$(command -v componentize-py || true)"
fi
if [ -z "$componentize" ]; then
    echo "error: componentize-py $version is missing: run 'bash plugins/python/setup.sh' in the weir repository (or 'pip install componentize-py==$version')" >&2
    exit 1
fi
paths=(-p .)
if [ -d deps ]; then paths+=(-p deps); fi
env -u VIRTUAL_ENV "$componentize" --quiet -d wit -w {{world}} componentize "${paths[@]}" -o {{name_snake}}.wasm app
# componentize-py records only its runtime: say the component is Python.
python3 producers.py {{name_snake}}.wasm "$version"
echo "built {{name_snake}}.wasm"
