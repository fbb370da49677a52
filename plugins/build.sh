#!/usr/bin/env bash
# Builds every example plugin into plugins/dist/<name>.wasm.
# Usage: bash plugins/build.sh [rust|python|js|c|go ...]   (default: all;
# from any directory; a no-op build is fast)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
mkdir -p dist

# Copies $1 to dist/$2 unless dist/$2 already has the same bytes, so an
# unchanged plugin keeps its mtime and the host's file watcher stays quiet.
publish() {
    if ! cmp -s "$1" "dist/$2"; then
        cp "$1" "dist/$2"
        echo "built dist/$2"
    fi
}

# --- Rust (plugins/rust, one cargo workspace) ---
build_rust() {
    if [ ! -d "$(rustc --print sysroot)/lib/rustlib/wasm32-wasip2" ]; then
        echo "error: the wasm32-wasip2 target is missing: run 'rustup target add wasm32-wasip2'" >&2
        exit 1
    fi
    # tests/build.rs shares this target dir (WEIR_GUEST_TARGET_DIR moves both).
    local target_dir="$PWD/rust/target"
    if [ -n "${WEIR_GUEST_TARGET_DIR:-}" ]; then
        target_dir="$WEIR_GUEST_TARGET_DIR/plugins-rust"
    fi
    CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release \
        --target wasm32-wasip2 --manifest-path rust/Cargo.toml
    local name
    for name in json_schema router; do
        publish "$target_dir/wasm32-wasip2/release/$name.wasm" "$name.wasm"
    done
}

# The languages to build: the arguments, or every one. The quickstart builds
# only rust, so it needs no Python, JavaScript, C or Go toolchain.
languages=("$@")
[ ${#languages[@]} -gt 0 ] || languages=(rust python js c go)
for language in "${languages[@]}"; do
    case $language in
    rust) build_rust ;;
    python | js | c | go) bash "$language/build.sh" ;;
    *)
        echo "error: unknown language '$language' (rust, python, js, c or go)" >&2
        exit 2
        ;;
    esac
done
