#!/usr/bin/env bash
# weir's end-to-end benchmark in one command, from a fresh machine:
# installs what it needs (tests/setup.sh: the wasm target, Java 17 and
# Apache Kafka's jars, the venv with aiokafka; then pydantic into that
# venv), builds the plugins, weir and the benchmark in release, and runs it
# on one Kafka node started as the tests start theirs (tests/all/broker.rs,
# found through WEIR_KAFKA_LIBS). Arguments go to the benchmark:
#   --quick            a smoke run (small inputs, short phases)
#   --markdown FILE    also write the results as Markdown
#   --only a,b         only the contenders whose names contain a or b
#   --no-scaling       skip the scaling runs
# Prints the table on stdout; takes about five minutes once built (--quick: two).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYDANTIC_VERSION=2.14.3
export WEIR_CACHE=${WEIR_CACHE:-$HOME/.cache/weir}

bash tests/setup.sh
# WEIR_KAFKA_LIBS (the broker's jars) and WEIR_PYTHON, as the tests get them.
# shellcheck source=/dev/null
. "$WEIR_CACHE/env.sh"
if ! "$WEIR_PYTHON" -c "import pydantic, sys; sys.exit(pydantic.VERSION != '$PYDANTIC_VERSION')" 2>/dev/null; then
    "$WEIR_PYTHON" -m pip install --quiet "pydantic==$PYDANTIC_VERSION"
fi

bash plugins/build.sh
cargo build --release --locked -p weir -p weir-bench
target=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target/release/weir-bench" --weir "$target/release/weir" "$@"
