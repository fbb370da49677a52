//! Builds the no-op validator (`tests/fixtures/noop`) for wasm32-wasip2 in
//! the fixtures' own workspace and target dir, the ones `tests/build.rs`
//! uses (so it is compiled once for both), and hands its path to the
//! benchmarks as `WEIR_BENCH_NOOP`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("bench/ has a parent");
    let fixtures = root.join("tests/fixtures");
    println!("cargo:rerun-if-changed={}", fixtures.join("noop").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-env-changed=WEIR_GUEST_TARGET_DIR");
    // As tests/build.rs names it: a folder of WEIR_GUEST_TARGET_DIR named
    // after the workspace, else the workspace's own target dir.
    let target_dir = match env::var_os("WEIR_GUEST_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("tests-fixtures"),
        None => fixtures.join("target"),
    };
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&fixtures)
        .args(["build", "--release", "--target", TARGET, "-p", "noop"])
        .arg("--manifest-path")
        .arg(fixtures.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        // The host build's flags and wrappers would break a wasm build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        // Our stdout is read by cargo as build-script directives.
        .stdout(std::io::stderr());
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        status.success(),
        "building the no-op guest failed ({status}): is the {TARGET} target installed \
         (`rustup target add {TARGET}`)? The errors are above."
    );
    let wasm = target_dir.join(TARGET).join("release/noop.wasm");
    assert!(wasm.is_file(), "{} was not built", wasm.display());
    println!("cargo:rustc-env=WEIR_BENCH_NOOP={}", wasm.display());
    println!(
        "cargo:rustc-env=WEIR_BENCH_ROOT={}",
        root.canonicalize().unwrap_or(root.to_path_buf()).display()
    );
}
