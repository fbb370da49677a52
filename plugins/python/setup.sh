#!/usr/bin/env bash
# Installs the Python plugin toolchain into $WEIR_CACHE (see toolchain.sh):
# componentize-py in a venv of its own and fastjsonschema as a plain folder
# that build.sh bundles into the json-schema component. Idempotent; quiet on
# success; on failure says which step failed and shows the end of its log.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=toolchain.sh
source "$here/toolchain.sh"

mkdir -p "$WEIR_CACHE"
LOG="$WEIR_CACHE/setup-python.log"
: >"$LOG"

fail() {
    echo "plugins/python/setup.sh: $*" >&2
    echo "---- last lines of $LOG ----" >&2
    tail -n 30 "$LOG" >&2
    exit 1
}

step() {
    local what=$1
    shift
    echo "== $what: $*" >>"$LOG"
    "$@" >>"$LOG" 2>&1 || fail "$what failed (full log: $LOG)"
}

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    step "apt-get update" apt-get update
    step "apt-get install python3-venv" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends python3 python3-venv
fi

componentize_ok() {
    [ "$("$COMPONENTIZE_PY_VENV/bin/componentize-py" --version 2>/dev/null)" \
        = "componentize-py $COMPONENTIZE_PY_VERSION" ]
}
if ! componentize_ok; then
    rm -rf "$COMPONENTIZE_PY_VENV"
    step "creating venv $COMPONENTIZE_PY_VENV" python3 -m venv "$COMPONENTIZE_PY_VENV"
    step "installing componentize-py $COMPONENTIZE_PY_VERSION" \
        "$COMPONENTIZE_PY_VENV/bin/pip" install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION"
    componentize_ok || fail "componentize-py $COMPONENTIZE_PY_VERSION does not run from $COMPONENTIZE_PY_VENV"
fi

if [ ! -f "$PYTHON_DEPS/fastjsonschema/__init__.py" ]; then
    rm -rf "$PYTHON_DEPS" "$PYTHON_DEPS.tmp"
    step "installing fastjsonschema $FASTJSONSCHEMA_VERSION" \
        "$COMPONENTIZE_PY_VENV/bin/pip" install --quiet --disable-pip-version-check \
        --no-deps --target "$PYTHON_DEPS.tmp" "fastjsonschema==$FASTJSONSCHEMA_VERSION"
    mv "$PYTHON_DEPS.tmp" "$PYTHON_DEPS"
fi
