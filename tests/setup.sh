#!/usr/bin/env bash
# Installs what weir's test suite needs and that cargo does not fetch by
# itself: the wasm32-wasip2 target, Apache Kafka's broker and tools (jars
# from Maven Central, run with the machine's Java 17), a Python venv with
# aiokafka for the end-to-end tests, the hostile-record client (Go, built
# from tests/e2e/hostile) and the plugin toolchains.
# Idempotent; quiet on success.
#
# Everything lives in $WEIR_CACHE (outside the repo) so a fresh clone on the
# same machine reuses it. On success writes $WEIR_CACHE/env.sh exporting
# WEIR_KAFKA_LIBS, WEIR_PYTHON and WEIR_HOSTILE_CLIENT.
set -euo pipefail

WEIR_CACHE=${WEIR_CACHE:-$HOME/.cache/weir}
AIOKAFKA_VERSION=0.14.0
# Must match <kafka.version> in tests/kafka/pom.xml.
KAFKA_VERSION=4.1.2

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The folder names the version and the pom's hash, so a change to either
# fetches anew instead of reusing the wrong jars.
POM_HASH=$(sha256sum "$HERE/kafka/pom.xml" | cut -c1-12)
KAFKA_LIBS="$WEIR_CACHE/kafka-$KAFKA_VERSION-$POM_HASH/libs"
VENV="$WEIR_CACHE/venv"
# The client's folder names the hash of its sources: an edit builds anew.
HOSTILE_SRC="$HERE/e2e/hostile"
HOSTILE_HASH=$(cat "$HOSTILE_SRC/go.mod" "$HOSTILE_SRC/go.sum" "$HOSTILE_SRC"/*.go | sha256sum | cut -c1-12)
HOSTILE="$WEIR_CACHE/hostile-$HOSTILE_HASH/hostile"
PYTHON="$VENV/bin/python"

mkdir -p "$WEIR_CACHE"
LOG="$WEIR_CACHE/setup.log"

fail() {
    echo "tests/setup.sh: $*" >&2
    echo "---- last lines of $LOG ----" >&2
    tail -n 40 "$LOG" >&2
    exit 1
}

# Runs a step with its output in the log; shows the log only if it fails.
step() {
    local what=$1
    shift
    echo "== $what: $*" >>"$LOG"
    "$@" >>"$LOG" 2>&1 || fail "$what failed (full log: $LOG)"
}

# Two setups at once (a developer and CI) would install everything twice.
exec 9>"$WEIR_CACHE/setup.lock"
flock 9
: >"$LOG"

apt_updated=
apt_install() {
    if [ -z "$apt_updated" ]; then
        step "apt-get update" apt-get update
        apt_updated=1
    fi
    step "apt-get install $*" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

command -v cargo >/dev/null && command -v rustup >/dev/null \
    || fail "cargo and rustup must be on PATH (this machine kind ships them)"
command -v cc >/dev/null && command -v make >/dev/null && command -v pkg-config >/dev/null \
    || apt_install build-essential pkg-config
# librdkafka is built with OpenSSL (TLS and SCRAM to Kafka).
[ -f /usr/include/openssl/ssl.h ] || apt_install libssl-dev
# The TLS tests make their certificates with the openssl command.
command -v openssl >/dev/null || apt_install openssl
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 \
    || apt_install python3 python3-venv

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    step "rustup target add" rustup target add wasm32-wasip2
fi

# Apache Kafka: the broker needs Java 17 or newer (its classes are release 17).
java_ok() {
    command -v java >/dev/null \
        && java -XshowSettings:properties -version 2>&1 \
            | awk -F' = ' '/java.specification.version/ { exit !($2 >= 17) }'
}
java_ok && command -v mvn >/dev/null || apt_install openjdk-17-jdk-headless maven
java_ok || fail "Java 17 or newer is needed for Apache Kafka; found: $(java -version 2>&1 | head -1)"
if [ ! -f "$KAFKA_LIBS/.complete" ]; then
    rm -rf "$KAFKA_LIBS"
    step "fetching Apache Kafka $KAFKA_VERSION from Maven Central" \
        mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
        -Dkafka.version="$KAFKA_VERSION" -DoutputDirectory="$KAFKA_LIBS"
    [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] || fail "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing in $KAFKA_LIBS"
    step "checking the broker's jars" java -cp "$KAFKA_LIBS/*" kafka.Kafka --version
    touch "$KAFKA_LIBS/.complete"
fi

venv_ok() {
    "$PYTHON" -c "import aiokafka, sys; sys.exit(aiokafka.__version__ != '$AIOKAFKA_VERSION')" >/dev/null 2>&1
}
if ! venv_ok; then
    rm -rf "$VENV"
    step "creating venv" python3 -m venv "$VENV"
    step "installing aiokafka" "$PYTHON" -m pip install --quiet "aiokafka==$AIOKAFKA_VERSION"
    venv_ok || fail "aiokafka $AIOKAFKA_VERSION does not import from $PYTHON"
fi

# The hostile-record client: Go's module and build caches live in the cache
# too; go.sum pins every module, and no toolchain is fetched.
command -v go >/dev/null \
    || fail "go (1.26 or newer) must be on PATH to build the hostile-record client in tests/e2e/hostile"
if [ ! -x "$HOSTILE" ]; then
    mkdir -p "$(dirname "$HOSTILE")"
    step "building the hostile-record client" env GOMODCACHE="$WEIR_CACHE/go/mod" \
        GOCACHE="$WEIR_CACHE/go/build" GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
        go -C "$HOSTILE_SRC" build -buildvcs=false -trimpath -o "$HOSTILE.tmp" .
    mv "$HOSTILE.tmp" "$HOSTILE"
fi

step "python plugin toolchain" env WEIR_CACHE="$WEIR_CACHE" bash "$HERE/../plugins/python/setup.sh"
step "js plugin toolchain" env WEIR_CACHE="$WEIR_CACHE" bash "$HERE/../plugins/js/setup.sh"
step "c plugin toolchain" env WEIR_CACHE="$WEIR_CACHE" bash "$HERE/../plugins/c/setup.sh"
step "go plugin toolchain" env WEIR_CACHE="$WEIR_CACHE" bash "$HERE/../plugins/go/setup.sh"


cat >"$WEIR_CACHE/env.sh.tmp" <<EOF
export WEIR_KAFKA_LIBS='$KAFKA_LIBS'
export WEIR_PYTHON='$PYTHON'
export WEIR_HOSTILE_CLIENT='$HOSTILE'
EOF
mv "$WEIR_CACHE/env.sh.tmp" "$WEIR_CACHE/env.sh"
