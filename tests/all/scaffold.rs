//! `weir new` for every language and world: the project it writes builds
//! with its own `build.sh` (run as an executable, so its mode is checked
//! too) and passes `weir test --expect` on its own sample input straight
//! away. A language whose toolchain is missing fails, naming its setup.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{TempDir, WEIR};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Where generated Rust projects build: shared, so reruns are quick.
fn rust_target_dir() -> PathBuf {
    match std::env::var_os("WEIR_GUEST_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("scaffold"),
        None => repo().join("target/scaffold"),
    }
}

/// `weir new <language> <name> --world <world>`, build, `weir test --expect`.
fn new_builds_and_passes(language: &str, world: &str) {
    let tmp = TempDir::new();
    let name = format!("my-{language}-{world}");
    let snake = name.replace('-', "_");
    let dir = tmp.0.join("project");
    let out = Command::new(WEIR)
        .args(["new", language, &name, "--world", world, "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "weir new: {}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!(
            "weir test {snake}.wasm --input input.jsonl --expect expected.jsonl"
        )),
        "next steps: {said}"
    );
    let wit = std::fs::read_to_string(dir.join("wit/plugin.wit")).unwrap();
    assert_eq!(
        wit,
        std::fs::read_to_string(repo().join("wit/plugin.wit")).unwrap()
    );

    let build = Command::new(dir.join("build.sh"))
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", rust_target_dir())
        .output()
        .unwrap_or_else(|e| panic!("{language}: cannot run build.sh: {e}"));
    assert!(
        build.status.success(),
        "{language} {world}: build.sh failed (is the toolchain installed? `bash plugins/{language}/setup.sh`, or `bash tests/setup.sh`): {}",
        text(&build)
    );
    let wasm = dir.join(format!("{snake}.wasm"));
    assert!(wasm.exists(), "build.sh wrote no {}", wasm.display());
    // What `weir check` and the start-up line report as its language.
    let named = match language {
        "rust" => "Rust",
        "python" => "Python",
        "js" => "JavaScript",
        "go" => "Go",
        _ => "C",
    };
    let producers = weir::plugin::producers::Producers::read(&std::fs::read(&wasm).unwrap());
    assert!(
        producers
            .get("language")
            .iter()
            .any(|l| l.starts_with(named)),
        "{language}: the component says {producers}"
    );

    let test = Command::new(WEIR)
        .current_dir(&dir)
        .args([
            "test",
            &format!("{snake}.wasm"),
            "--input",
            "input.jsonl",
            "--expect",
            "expected.jsonl",
        ])
        .output()
        .unwrap();
    assert!(test.status.success(), "weir test --expect: {}", text(&test));
    let stderr = String::from_utf8_lossy(&test.stderr);
    let summary = stderr.lines().last().unwrap_or_default();
    assert!(
        summary.ends_with(" passed, 0 failed") && !summary.starts_with("0 "),
        "summary: {summary}"
    );
    if world == "validator" {
        // The sample input shows a rejection too.
        assert!(
            String::from_utf8_lossy(&test.stdout).contains("\"invalid\""),
            "{}",
            text(&test)
        );
    }
}

#[test]
fn new_rust_validator_builds_and_passes() {
    new_builds_and_passes("rust", "validator");
}

#[test]
fn new_rust_transformer_builds_and_passes() {
    new_builds_and_passes("rust", "transformer");
}

#[test]
fn new_python_validator_builds_and_passes() {
    new_builds_and_passes("python", "validator");
}

#[test]
fn new_python_transformer_builds_and_passes() {
    new_builds_and_passes("python", "transformer");
}

#[test]
fn new_js_validator_builds_and_passes() {
    new_builds_and_passes("js", "validator");
}

#[test]
fn new_js_transformer_builds_and_passes() {
    new_builds_and_passes("js", "transformer");
}

#[test]
fn new_c_validator_builds_and_passes() {
    new_builds_and_passes("c", "validator");
}

#[test]
fn new_c_transformer_builds_and_passes() {
    new_builds_and_passes("c", "transformer");
}

#[test]
fn new_go_validator_builds_and_passes() {
    new_builds_and_passes("go", "validator");
}

#[test]
fn new_go_transformer_builds_and_passes() {
    new_builds_and_passes("go", "transformer");
}

#[test]
fn new_refuses_a_bad_name_a_full_dir_and_an_unknown_language() {
    let tmp = TempDir::new();
    let bad = Command::new(WEIR)
        .args(["new", "rust", "Bad Name", "--dir"])
        .arg(tmp.0.join("a"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("bad plugin name \"Bad Name\""),
        "{}",
        text(&bad)
    );
    assert!(
        !tmp.0.join("a").exists(),
        "nothing is written for a bad name"
    );

    tmp.write("existing", "");
    let full = Command::new(WEIR)
        .args(["new", "rust", "ok", "--dir"])
        .arg(&tmp.0)
        .output()
        .unwrap();
    assert!(!full.status.success());
    assert!(
        String::from_utf8_lossy(&full.stderr).contains("already exists and is not empty"),
        "{}",
        text(&full)
    );

    let unknown = Command::new(WEIR)
        .args(["new", "cobol", "ok", "--dir"])
        .arg(tmp.0.join("b"))
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("rust, python, js, c, go"),
        "{}",
        text(&unknown)
    );
}
