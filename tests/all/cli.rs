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
    // Each pipeline's start-up line says what its plugin is and cost.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let started = stderr
        .lines()
        .find(|l| l.contains("plugin instantiated"))
        .unwrap_or_else(|| panic!("no start-up line: {stderr}"));
    for field in [
        "validator",
        "instantiate_ms",
        "compile_ms",
        "bytes",
        "language: Rust",
    ] {
        assert!(started.contains(field), "{field} missing: {started}");
    }
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

/// `weir test` with `--expect`, `--format` and its summary line.
mod runner {
    use super::*;

    fn stderr(out: &Output) -> String {
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn schema_arg() -> String {
        format!(
            "schema=@{}",
            repo().join("quickstart/schemas/order.json").display()
        )
    }

    const ORDERS: &str = "{\"key\":\"k1\",\"value\":{\"id\":1,\"text\":\"a\"}}\n\
                          {\"key\":\"k2\",\"value\":{\"id\":\"x\",\"text\":\"a\"}}\n\
                          {\"key\":\"k3\",\"value\":null}\n";

    #[test]
    fn weir_test_expect_passes_and_says_so() {
        let dir = TempDir::new();
        let expected = dir.write(
            "expected.jsonl",
            "{\"result\":\"accepted\"}\n{\"result\":\"invalid\"}\n\n{\"result\":\"invalid\",\"line\":3}\n",
        );
        let out = weir(
            &[
                "test",
                fixtures::JSON_SCHEMA,
                "-c",
                &schema_arg(),
                "--expect",
                expected.to_str().unwrap(),
            ],
            ORDERS,
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stderr(&out).lines().last(), Some("3 passed, 0 failed"));
        assert_eq!(lines(&out).len(), 3, "results are still printed");
    }

    #[test]
    fn weir_test_expect_fails_with_a_diff_naming_line_key_and_field() {
        let dir = TempDir::new();
        let expected = dir.write(
            "expected.jsonl",
            "{\"result\":\"accepted\"}\n{\"result\":\"accepted\"}\n{\"result\":\"invalid\"}\n",
        );
        let out = weir(
            &[
                "test",
                fixtures::JSON_SCHEMA,
                "-c",
                &schema_arg(),
                "--expect",
                expected.to_str().unwrap(),
            ],
            ORDERS,
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("FAIL stdin:2 (key \"k2\") against") && err.contains("expected.jsonl:2"),
            "{err}"
        );
        assert!(
            err.contains("result: expected \"accepted\", actual \"invalid\""),
            "{err}"
        );
        assert!(err.contains("/id"), "the actual reason is shown: {err}");
        assert!(!err.contains("stdin:1 "), "line 1 passed: {err}");
        assert_eq!(err.lines().last(), Some("2 passed, 1 failed"));

        // Outputs are compared item by item and field by field.
        let expected = dir.write(
            "router.jsonl",
            "{\"result\":\"outputs\",\"outputs\":[{\"topic\":\"orders.us\",\"key\":\"r\",\"value\":\"{\\\"region\\\":\\\"eu\\\"}\",\"headers\":[]}]}\n",
        );
        let out = weir(
            &[
                "test",
                fixtures::ROUTER,
                "-c",
                "route.eu=orders.eu",
                "--expect",
                expected.to_str().unwrap(),
            ],
            "{\"key\":\"r\",\"value\":{\"region\":\"eu\"}}\n",
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("outputs[0].topic: expected \"orders.us\", actual \"orders.eu\""),
            "{err}"
        );
        assert!(
            !err.contains("outputs[0].value"),
            "equal fields are not listed: {err}"
        );
    }

    #[test]
    fn weir_test_expect_counts_lines_both_ways_and_names_a_bad_expected_line() {
        let dir = TempDir::new();
        let short = dir.write("short.jsonl", "{\"result\":\"accepted\"}\n");
        let args = |file: &std::path::Path| {
            vec![
                "test".to_string(),
                fixtures::JSON_SCHEMA.to_string(),
                "-c".into(),
                schema_arg(),
                "--expect".into(),
                file.display().to_string(),
            ]
        };
        let run = |file: &std::path::Path, input: &str| {
            let a = args(file);
            weir(&a.iter().map(String::as_str).collect::<Vec<_>>(), input)
        };
        let out = run(&short, ORDERS);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("no expected line for message 2"),
            "{}",
            stderr(&out)
        );
        assert_eq!(stderr(&out).lines().last(), Some("1 passed, 2 failed"));

        let long = dir.write(
            "long.jsonl",
            "{\"result\":\"accepted\"}\n{\"result\":\"invalid\"}\n{\"result\":\"invalid\"}\n{\"result\":\"accepted\"}\n",
        );
        let out = run(&long, ORDERS);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("has 4 expected lines but the input gave 3 messages"),
            "{}",
            stderr(&out)
        );

        let bad = dir.write("bad.jsonl", "{\"result\":\"accepted\"}\n[1]\n");
        let out = run(&bad, ORDERS);
        assert_eq!(out.status.code(), Some(3));
        assert!(stderr(&out).contains("bad.jsonl:2"), "{}", stderr(&out));
    }

    #[test]
    fn weir_test_pretty_shows_verdicts_outputs_and_each_message_s_own_logs() {
        let out = weir(
            &["test", fixtures::NOISY, "--format", "pretty"],
            "{\"key\":\"a\",\"value\":\"x\"}\n{\"key\":\"b\",\"value\":\"y\"}\n",
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "line 1  key \"a\"  accepted", "{text}");
        // The lines a message caused sit under it, and only those.
        let first: Vec<&str> = lines[1..]
            .iter()
            .take_while(|l| l.starts_with("    "))
            .copied()
            .collect();
        assert_eq!(first.len(), 3, "{text}");
        for l in &first {
            assert!(l.contains("offset 0"), "{text}");
        }
        assert!(
            first.iter().any(|l| l.starts_with("    [stdout]")),
            "{text}"
        );
        assert!(
            first.iter().any(|l| l.starts_with("    [stderr]")),
            "{text}"
        );
        assert!(first.iter().any(|l| l.starts_with("    [info]")), "{text}");
        assert!(text.contains("line 2  key \"b\"  accepted"), "{text}");
        // init's lines are not any message's: they go to stderr.
        assert!(!text.contains("init"), "{text}");
        let err = stderr(&out);
        assert!(err.contains("init [stdout] noisy init stdout"), "{err}");
        assert!(!err.contains("noisy log offset"), "not logged twice: {err}");
        assert_eq!(
            err.lines().last(),
            Some("2 messages: 2 accepted, 0 invalid")
        );

        let out = weir(
            &[
                "test",
                fixtures::ROUTER,
                "--format",
                "pretty",
                "-c",
                "route.eu=orders.eu",
            ],
            "{\"key\":\"r\",\"value\":{\"items\":[{\"region\":\"eu\"},{\"n\":1}]}}\n{\"value\":[1]}\n",
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("line 1  key \"r\"  2 output(s)"), "{text}");
        assert!(
            text.contains("    → orders.eu  key \"r\"  value {\"region\":\"eu\"}  headers weir.split.index=\"0\""),
            "{text}"
        );
        assert!(
            text.contains("    → (output topic)  key \"r\"  value {\"n\":1}"),
            "{text}"
        );
        assert!(
            text.contains("line 2  key null  invalid: value is JSON but not an object"),
            "{text}"
        );
        assert_eq!(
            stderr(&out).lines().last(),
            Some("2 messages: 0 accepted, 1 transformed into 2 records, 1 invalid")
        );
    }

    #[test]
    fn weir_check_names_the_plugin_s_language_and_toolchain() {
        let out = weir(
            &[
                "check",
                "--config",
                repo().join("quickstart/weir.toml").to_str().unwrap(),
            ],
            "",
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", stderr(&out));
        assert!(
            stdout.contains("json_schema.wasm made with language: Rust"),
            "{stdout}"
        );
        assert!(stdout.contains("processed-by: rustc 1."), "{stdout}");
        assert!(stdout.contains("instantiated in"), "{stdout}");
    }
}
