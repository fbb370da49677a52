#!/usr/bin/env bash
# Builds the plugins and the host, then runs the quickstart pipeline on the
# embedded broker: seeds orders.raw, runs every message through the
# JSON-schema plugin, prints what reached orders.valid and orders.invalid.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
bash plugins/build.sh rust
exec cargo run --quiet -p weir --bin weir -- \
    run --config quickstart/weir.toml --seed quickstart/messages.jsonl --drain
