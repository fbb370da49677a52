#!/usr/bin/env bash
# Installs the JavaScript plugin toolchain (jco, componentize-js, esbuild and
# the JSON Schema library, versions pinned by package-lock.json beside this
# script) into $WEIR_CACHE/js-<hash of the lock file>/node_modules.
# Idempotent and quiet on success; on failure names the step and shows the log.
#
# The folder is named by the lock file's hash, so a change of versions
# installs anew instead of reusing a stale tree. plugins/js/build.sh and the
# templates find the toolchain through $WEIR_CACHE/js/ (a symlink to it).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WEIR_CACHE=${WEIR_CACHE:-$HOME/.cache/weir}
mkdir -p "$WEIR_CACHE"
LOG="$WEIR_CACHE/js-setup.log"
: >"$LOG"

fail() {
    echo "plugins/js/setup.sh: $*" >&2
    echo "---- last lines of $LOG ----" >&2
    tail -n 40 "$LOG" >&2
    exit 1
}

step() {
    local what=$1
    shift
    echo "== $what: $*" >>"$LOG"
    "$@" >>"$LOG" 2>&1 || fail "$what failed (full log: $LOG)"
}

# componentize-js needs Node.js 18 or newer; Debian bookworm ships 18.
node_ok() {
    command -v node >/dev/null && command -v npm >/dev/null \
        && node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'
}
if ! node_ok; then
    step "apt-get update" apt-get update
    step "apt-get install nodejs npm" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends nodejs npm
    node_ok || fail "Node.js 18 or newer is needed; found: $(node --version 2>&1 || echo none)"
fi

hash=$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -c1-16)
root="$WEIR_CACHE/js-$hash"
if [ ! -f "$root/.complete" ]; then
    rm -rf "$root"
    mkdir -p "$root"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$root/"
    # --ignore-scripts: the only install script (esbuild's) just checks its
    # platform binary, which npm installs as an optional dependency anyway.
    step "npm ci" npm ci --prefix "$root" --no-audit --no-fund --ignore-scripts
    for tool in jco componentize-js esbuild; do
        [ -x "$root/node_modules/.bin/$tool" ] || fail "npm ci finished but $tool is missing in $root"
    done
    step "esbuild runs" "$root/node_modules/.bin/esbuild" --version
    touch "$root/.complete"
fi
ln -sfn "js-$hash" "$WEIR_CACHE/js"
# Each install is ~350 MB: drop those of earlier lock files.
for old in "$WEIR_CACHE"/js-*; do
    if [ -d "$old" ] && [ "$old" != "$root" ]; then rm -rf "$old"; fi
done
