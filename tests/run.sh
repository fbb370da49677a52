#!/usr/bin/env bash
# The whole test suite from a fresh machine: installs what it needs (cached
# in ${WEIR_CACHE:-~/.cache/weir}), builds the example plugins, runs every
# test crate of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export WEIR_CACHE="${WEIR_CACHE:-$HOME/.cache/weir}"
bash tests/setup.sh
# shellcheck disable=SC1091
source "$WEIR_CACHE/env.sh"
export WEIR_KAFKA_LIBS WEIR_PYTHON WEIR_HOSTILE_CLIENT
# Build outputs live in the cache too, so a fresh clone on a machine that
# already ran the suite does not compile wasmtime and the plugins again.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$WEIR_CACHE/target}"
export WEIR_GUEST_TARGET_DIR="${WEIR_GUEST_TARGET_DIR:-$WEIR_CACHE/guest-target}"
bash plugins/build.sh
# No unwrap or expect on data from outside in the host's code (lib.rs denies them outside tests).
cargo clippy -p weir --lib --locked
cargo test --workspace --locked --no-fail-fast "$@"
