#!/usr/bin/env bash
# Builds {{name_snake}}.wasm in this directory: bash build.sh (from anywhere).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if ! command -v cargo >/dev/null; then
    echo "error: cargo is missing: install Rust with rustup (https://rustup.rs)" >&2
    exit 1
fi
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/wasm32-wasip2" ]; then
    echo "error: the wasm32-wasip2 target is missing: run 'rustup target add wasm32-wasip2'" >&2
    exit 1
fi
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --release --target wasm32-wasip2
cp "$target_dir/wasm32-wasip2/release/{{name_snake}}.wasm" {{name_snake}}.wasm
echo "built {{name_snake}}.wasm"
