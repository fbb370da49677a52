#!/usr/bin/env bash
# Runs the Rust and the JavaScript example plugins over the same messages
# with `weir test` and fails on any difference in verdict or outputs (reasons
# and log lines may be worded differently, so they are left out): the probes
# here (strict JSON, number spelling, key order, a 2020-12 schema with $ref,
# format, prefixItems, …), the C plugins' probes and rich schema, and 4,000
# random mutations of JSON documents (plugins/c/tests/mutate.py).
# Usage: bash plugins/js/tests/compare.sh [path/to/weir]   (after plugins/build.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
WEIR=${1:-${CARGO_TARGET_DIR:-target}/debug/weir}
command -v jq >/dev/null || { echo "error: jq is needed (apt-get install jq)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

# compare RUST.wasm JS.wasm INPUT CONFIG...
compare() {
    local rust=$1 js=$2 input=$3
    shift 3
    "$WEIR" test "plugins/dist/$rust" --input "$input" "$@" 2>/dev/null | jq -c 'del(.reason,.logs)' >"$tmp/rust"
    "$WEIR" test "plugins/dist/$js" --input "$input" "$@" 2>/dev/null | jq -c 'del(.reason,.logs)' >"$tmp/js"
    if [ ! -s "$tmp/rust" ] || ! diff -q "$tmp/rust" "$tmp/js" >/dev/null; then
        echo "DIFFERENT: $js vs $rust on $input" >&2
        diff "$tmp/rust" "$tmp/js" | cut -c1-300 >&2 || true
        status=1
    else
        echo "same: $js and $rust on $input ($(wc -l <"$tmp/js") messages)"
    fi
}
routes=(-c route_field=region -c route.eu=orders.eu -c route.us=orders.us)
here=plugins/js/tests
compare json_schema.wasm js_json_schema.wasm $here/probe-validator.jsonl -c schema=@quickstart/schemas/order.json
compare json_schema.wasm js_json_schema.wasm $here/rich.jsonl -c schema=@$here/rich-schema.json
compare router.wasm js_router.wasm $here/probe-router.jsonl "${routes[@]}" \
    -c route.__proto__=orders.proto -c route.constructor=orders.c
compare router.wasm js_router.wasm $here/numbers.jsonl "${routes[@]}"
compare json_schema.wasm js_json_schema.wasm plugins/c/tests/probe.jsonl -c schema=@quickstart/schemas/order.json
compare json_schema.wasm js_json_schema.wasm plugins/c/tests/rich.jsonl -c schema=@plugins/c/tests/rich-schema.json
compare router.wasm js_router.wasm plugins/c/tests/probe.jsonl "${routes[@]}"
python3 plugins/c/tests/mutate.py 4000 >"$tmp/mutated.jsonl"
compare json_schema.wasm js_json_schema.wasm "$tmp/mutated.jsonl" -c schema=@quickstart/schemas/order.json
compare router.wasm js_router.wasm "$tmp/mutated.jsonl" "${routes[@]}"
exit $status
