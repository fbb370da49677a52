#!/usr/bin/env bash
# weir's end-to-end benchmark in one command, from a fresh machine:
# installs what it needs (tests/setup.sh: the wasm target, Java 17, Maven
# and Apache Kafka's jars, the venv with aiokafka; then pydantic into that
# venv), builds the plugins, weir, the benchmark in release and the Kafka
# Streams contender (bench/streams, with Maven, its repository cached in
# $WEIR_CACHE/m2), and runs it on one Kafka node started as the tests start
# theirs (tests/all/broker.rs, found through WEIR_KAFKA_LIBS). Arguments go
# to the benchmark:
#   --quick            a smoke run (small inputs, short phases, 2 rounds)
#   --rounds N         rounds of every contender (default 3); medians are reported
#   --partitions 1,4   --sizes 100,1000,10000   the inputs
#   --lanes 1,2,4      also weir's Python and JS validators with `lanes = N`
#                      (or WEIR_BENCH_LANES; default 1: no such rows)
#   --markdown FILE    also write the results as Markdown
#   --only a,b         only the contenders whose names contain a or b
#   --no-scaling       skip the scaling runs
# Prints every table on stdout; a full run takes about an hour once built on
# two cores (--quick: about seven minutes, 35 from an empty cache).
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
mvn -q -B -Dmaven.repo.local="$WEIR_CACHE/m2" -f bench/streams/pom.xml package
target=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target/release/weir-bench" --weir "$target/release/weir" "$@"
