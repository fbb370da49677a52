#!/usr/bin/env bash
# Runs the Rust and the C example plugins over the same messages with
# `weir test` and fails on any difference in verdict or outputs (reasons and
# log lines may be worded differently, so they are left out): the probes
# here, a schema using every keyword of the C subset, and 4,000 random
# mutations of JSON documents (mutate.py).
# Usage: bash plugins/c/tests/compare.sh [path/to/weir]   (after plugins/build.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
WEIR=${1:-${CARGO_TARGET_DIR:-target}/debug/weir}
command -v jq >/dev/null || { echo "error: jq is needed (apt-get install jq)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

# compare RUST.wasm C.wasm INPUT CONFIG...
compare() {
    local rust=$1 c=$2 input=$3
    shift 3
    "$WEIR" test "plugins/dist/$rust" --input "$input" "$@" 2>/dev/null | jq -c 'del(.reason,.logs)' >"$tmp/rust"
    "$WEIR" test "plugins/dist/$c" --input "$input" "$@" 2>/dev/null | jq -c 'del(.reason,.logs)' >"$tmp/c"
    if [ ! -s "$tmp/rust" ] || ! diff -q "$tmp/rust" "$tmp/c" >/dev/null; then
        echo "DIFFERENT: $c vs $rust on $input" >&2
        diff "$tmp/rust" "$tmp/c" | cut -c1-300 >&2 || true
        status=1
    else
        echo "same: $c and $rust on $input ($(wc -l <"$tmp/c") messages)"
    fi
}
compare json_schema.wasm c_json_schema.wasm plugins/c/tests/probe.jsonl -c schema=@quickstart/schemas/order.json
compare json_schema.wasm c_json_schema.wasm plugins/c/tests/rich.jsonl -c schema=@plugins/c/tests/rich-schema.json
compare router.wasm c_router.wasm plugins/c/tests/probe.jsonl \
    -c route_field=region -c route.eu=orders.eu -c route.us=orders.us
python3 plugins/c/tests/mutate.py 4000 >"$tmp/mutated.jsonl"
compare json_schema.wasm c_json_schema.wasm "$tmp/mutated.jsonl" -c schema=@quickstart/schemas/order.json
compare router.wasm c_router.wasm "$tmp/mutated.jsonl" -c route.eu=orders.eu -c route.us=orders.us
exit $status
