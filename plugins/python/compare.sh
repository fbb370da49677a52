#!/usr/bin/env bash
# Runs the Rust and the Python example plugins over the same messages and
# diffs their results (reasons and logs aside, which may be worded apart).
# Usage: bash plugins/python/compare.sh [FILE.jsonl]   (default: edge-cases.jsonl,
# cases beyond tests/conformance: nesting depth, lone surrogates, number
# formats, huge integers, duplicate keys, a BOM). WEIR=path/to/weir if not on PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."
input="${1:-$here/edge-cases.jsonl}"
weir="${WEIR:-weir}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
lines=$(wc -l <"$input")
status=0
# compare <name> <config...>: the Rust plugins/dist/<name>.wasm against python_<name>.wasm.
compare() {
    local name=$1 lang
    shift
    for lang in "" python_; do
        "$weir" test "plugins/dist/$lang$name.wasm" -i "$input" "$@" 2>"$tmp/err" \
            | jq -c 'del(.reason, .logs)' >"$tmp/$lang$name" || true
        if [ "$(wc -l <"$tmp/$lang$name")" != "$lines" ]; then
            echo "$lang$name.wasm gave no result for every message:" >&2
            tail -3 "$tmp/err" >&2
            status=1
            return
        fi
    done
    diff "$tmp/$name" "$tmp/python_$name" || status=1
}
compare json_schema -c schema=@quickstart/schemas/order.json
compare router -c route_field=region -c route.eu=orders.eu -c route.us=orders.us
[ "$status" = 0 ] && echo "identical: $lines messages, validator and router"
exit "$status"
