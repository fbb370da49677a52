//! The `weir` command as a user runs it: `test`, `check`, and the
//! quickstart on the embedded broker.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::fixtures;
use crate::support::{TempDir, WEIR};

fn weir(args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(WEIR)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn weir_test_prints_one_result_per_message() {
    let schema = repo().join("quickstart/schemas/order.json");
    let input = "{\"value\":{\"id\":1,\"text\":\"a\"}}\n\n{\"value\":{\"id\":\"x\",\"text\":\"a\"}}\n{\"value\":null}\n";
    let out = weir(
        &[
            "test",
            fixtures::JSON_SCHEMA,
            "--config",
            &format!("schema=@{}", schema.display()),
        ],
        input,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = lines(&out);
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["result"], "accepted");
    assert_eq!(results[1]["result"], "invalid");
    assert_eq!(results[1]["line"], 3);
    assert!(results[1]["reason"].as_str().unwrap().contains("/id"));
    assert_eq!(results[2]["result"], "invalid");
}

#[test]
fn weir_test_shows_outputs_logs_and_traps() {
    let out = weir(
        &["test", fixtures::FAN_OUT],
        "{\"key\":\"k\",\"value\":\"2\",\"headers\":{\"h\":{\"$base64\":\"/w==\"}}}\n",
    );
    let r = &lines(&out)[0];
    assert_eq!(r["result"], "outputs");
    assert_eq!(r["outputs"].as_array().unwrap().len(), 2);
    assert_eq!(
        r["outputs"][0]["headers"],
        json!([["h", {"$base64": "/w=="}]])
    );

    let out = weir(&["test", fixtures::NOISY], "{\"value\":\"x\"}\n");
    let r = &lines(&out)[0];
    assert_eq!(r["result"], "accepted");
    assert!(r["logs"].as_array().unwrap().len() >= 3, "{r}");

    let out = weir(
        &["test", fixtures::TRAP_ON_BOOM],
        "{\"value\":\"boom\"}\n{\"value\":\"ok\"}\n",
    );
    let rs = lines(&out);
    assert_eq!(rs[0]["result"], "trap");
    assert_eq!(rs[1]["result"], "accepted");
}

#[test]
fn weir_test_fails_loudly_on_a_plugin_that_does_not_load_and_on_bad_lines() {
    let out = weir(&["test", fixtures::WRONG_WORLD], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither weir world"));
    let out = weir(&["test", fixtures::INIT_ERROR], "");
    assert_eq!(out.status.code(), Some(2));
    let out = weir(&["test", fixtures::ECHO], "{\"value\":1}\nnot json\n");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin:2"));
    assert_eq!(lines(&out).len(), 1, "good lines still run");
}

#[test]
fn weir_check_loads_every_plugin_without_kafka() {
    let out = weir(
        &[
            "check",
            "--config",
            repo().join("quickstart/weir.toml").to_str().unwrap(),
        ],
        "",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("pipeline orders: orders.raw") && stdout.contains("validator"),
        "{stdout}"
    );

    let dir = TempDir::new();
    let config = dir.write(
        "weir.toml",
        &format!(
            "[kafka]\nbrokers = \"embedded\"\n[[pipeline]]\nname = \"p\"\ninput = \"a\"\noutput = \"b\"\n\
             dead_letter = \"c\"\nplugin = \"{}\"\n",
            fixtures::WRONG_WORLD
        ),
    );
    let out = weir(&["check", "--config", config.to_str().unwrap()], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pipeline \"p\"") && stderr.contains("neither weir world"),
        "{stderr}"
    );
}

#[test]
fn a_bad_config_names_file_line_and_key() {
    let dir = TempDir::new();
    let config = dir.write(
        "weir.toml",
        "[kafka]\nbrokers = \"embedded\"\nbrokerz = 1\n",
    );
    let out = weir(&["check", "--config", config.to_str().unwrap()], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("weir.toml:3") && stderr.contains("brokerz"),
        "{stderr}"
    );
}

#[test]
fn the_quickstart_runs_on_the_embedded_broker() {
    let root = repo();
    let out = Command::new(WEIR)
        .current_dir(root)
        .args([
            "run",
            "--config",
            "quickstart/weir.toml",
            "--seed",
            "quickstart/messages.jsonl",
            "--drain",
        ])
        .env_remove("KAFKA_BROKERS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("seeded 15 records"), "{stdout}");
    assert!(
        stdout.contains("output in orders.valid: 10 records"),
        "{stdout}"
    );
    assert!(
        stdout.contains("dead letters in orders.invalid: 5 records"),
        "{stdout}"
    );
    for i in 0..10 {
        assert!(stdout.contains(&format!("Hello {i}")), "{stdout}");
    }
    assert!(
        stdout.contains("[invalid: /id"),
        "reasons are printed: {stdout}"
    );
}

#[test]
fn weir_check_never_prints_secrets() {
    let dir = TempDir::new();
    let config = dir.write(
        "weir.toml",
        &format!(
            "[kafka]\nbrokers = \"127.0.0.1:9\"\n[kafka.properties]\n\"sasl.password\" = \"${{WEIR_TEST_SECRET}}\"\n\
             \"client.id\" = \"shown\"\n[[pipeline]]\nname = \"p\"\ninput = \"a\"\noutput = \"b\"\n\
             dead_letter = \"c\"\nplugin = \"{}\"\n",
            fixtures::ECHO
        ),
    );
    let out = Command::new(WEIR)
        .args(["check", "--config", config.to_str().unwrap()])
        .env("WEIR_TEST_SECRET", "hunter2")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("client.id = shown") && all.contains("sasl.password = <redacted>"),
        "{all}"
    );
    assert!(!all.contains("hunter2"), "{all}");
}
